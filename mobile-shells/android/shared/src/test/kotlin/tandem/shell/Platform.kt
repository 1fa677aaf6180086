// The JVM stand-ins for the platform services are the bindings tests' own
// (ffi/tests/bindings/kotlin/Platform.kt: clock, location, key store). The shell adds only
// its signer: it signs DER like Android Keystore's `SHA256withECDSA` and goes through the
// shell's own conversion, so core's verifiers check that conversion.
package tandem.shell

import java.security.KeyPairGenerator
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.atomic.AtomicInteger
import tandem.DevicePublicKey
import tandem.SignatureAlgorithm
import tandem.Signer

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
