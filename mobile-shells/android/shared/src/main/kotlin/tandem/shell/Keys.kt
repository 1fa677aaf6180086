// The byte formats between a platform key store and core (DESIGN.md §7): Android Keystore
// signs ECDSA as DER and exports public keys as SubjectPublicKeyInfo; core takes the
// fixed-width r‖s signature and the 65-byte uncompressed point. Strict both ways: a
// malformed value is a platform error, never a guess.
package tandem.shell

import tandem.TandemException

/** P-256 conversions for hardware signers. */
object P256 {
    /** Width of r and of s. */
    private const val FIELD = 32

    /** The DER header of a P-256 SubjectPublicKeyInfo with an uncompressed point. */
    private val SPKI_HEADER = byteArrayOf(
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x02, 0x01,
        0x06, 0x08, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    )

    /** `SHA256withECDSA`'s DER `SEQUENCE { INTEGER r, INTEGER s }` → 64 bytes r‖s. */
    fun derToRaw(der: ByteArray): ByteArray {
        fun bad(why: String): Nothing = throw TandemException.Platform("ECDSA signature from the key store: $why")
        // Both integers fit in 33 bytes, so every length is one byte (short form).
        if (der.size < 8 || der[0] != 0x30.toByte()) bad("not a DER sequence")
        if (der[1].toInt() and 0xFF != der.size - 2) bad("sequence length ${der[1].toInt() and 0xFF} for ${der.size} bytes")
        val out = ByteArray(2 * FIELD)
        var at = 2
        for (slot in 0..1) {
            if (at + 2 > der.size || der[at] != 0x02.toByte()) bad("integer ${slot + 1} missing")
            val len = der[at + 1].toInt() and 0xFF
            val start = at + 2
            if (len == 0 || len > FIELD + 1 || start + len > der.size) bad("integer ${slot + 1} of $len bytes")
            var value = der.copyOfRange(start, start + len)
            if (value[0] < 0) bad("negative integer")
            // A leading zero only marks a positive number whose top bit is set.
            if (value.size > 1 && value[0] == 0.toByte()) {
                if (value[1] >= 0) bad("integer ${slot + 1} is not minimally encoded")
                value = value.copyOfRange(1, value.size)
            }
            if (value.size > FIELD) bad("integer ${slot + 1} wider than 32 bytes")
            value.copyInto(out, (slot + 1) * FIELD - value.size)
            at = start + len
        }
        if (at != der.size) bad("${der.size - at} bytes after the signature")
        return out
    }

    /** A P-256 public key as `PublicKey.getEncoded()` gives it (X.509 SubjectPublicKeyInfo)
     *  → the 65-byte uncompressed point `04 ‖ x ‖ y`. */
    fun spkiToPoint(spki: ByteArray): ByteArray {
        val headerMatches = spki.size == SPKI_HEADER.size + 1 + 2 * FIELD &&
            spki.copyOfRange(0, SPKI_HEADER.size).contentEquals(SPKI_HEADER)
        if (!headerMatches || spki[SPKI_HEADER.size] != 0x04.toByte()) {
            throw TandemException.Platform("the key store's public key is not an uncompressed P-256 key (${spki.size} bytes)")
        }
        return spki.copyOfRange(SPKI_HEADER.size, spki.size)
    }
}
