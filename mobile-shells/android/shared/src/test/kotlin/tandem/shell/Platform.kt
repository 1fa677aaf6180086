// JVM stand-ins for the Android platform services, written the way the Android layer
// writes its own: the signer signs DER like Android Keystore's `SHA256withECDSA` and goes
// through the shell's own conversion, so core's verifiers check that conversion.
package tandem.shell

import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import tandem.Clock
import tandem.Datum
import tandem.DevicePublicKey
import tandem.KeyStore
import tandem.LocationFix
import tandem.LocationSource
import tandem.Provider
import tandem.SignatureAlgorithm
import tandem.Signer
import tandem.TandemException

/** The phone's clocks; [advancedMs] moves both forward for a test. */
class TestClock : Clock {
    @Volatile var advancedMs = 0L

    override fun wallMs(): Long = System.currentTimeMillis() + advancedMs

    override fun monotonicMs(): Long = System.nanoTime() / 1_000_000 + advancedMs

    override fun bootId(): String = "jvm-" + ProcessHandle.current().pid()
}

/** The fused provider: a fix the test sets, with the platform's mock flag. */
class TestLocation : LocationSource {
    @Volatile var fix: LocationFix? = null

    override fun currentFix(): LocationFix? = fix

    /** Stands [northM] metres north of a point (1e-7° of latitude ≈ 1.1 cm). */
    fun standAt(latE7: Int, lonE7: Int, northM: Int = 0, mock: Boolean = false) {
        fix = LocationFix(latE7 + northM * 90, lonE7, Datum.WGS84, 8u, Provider.FUSED, mock, System.currentTimeMillis())
    }
}

/** AES-256-GCM under a key that never leaves the object, the label authenticated. */
class TestKeyStore : KeyStore {
    private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    override fun seal(label: String, secret: ByteArray): ByteArray {
        val nonce = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key, GCMParameterSpec(128, nonce))
        cipher.updateAAD(label.toByteArray())
        return nonce + cipher.doFinal(secret)
    }

    override fun unseal(label: String, sealed: ByteArray): ByteArray {
        if (sealed.size < 28) throw TandemException.Platform("sealed secret too short")
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
        cipher.updateAAD(label.toByteArray())
        return try {
            cipher.doFinal(sealed, 12, sealed.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw TandemException.Platform("cannot unseal $label")
        }
    }
}

/** A P-256 key signing DER (as Android Keystore does), converted by [P256]. */
class DerP256Signer : Signer {
    private val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
    val signatures = AtomicInteger()

    override fun publicKey(): DevicePublicKey =
        DevicePublicKey(SignatureAlgorithm.ECDSA_P256_SHA256, P256.spkiToPoint(pair.public.encoded))

    override fun sign(message: ByteArray): ByteArray {
        signatures.incrementAndGet()
        val der = Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
        return P256.derToRaw(der)
    }
}
