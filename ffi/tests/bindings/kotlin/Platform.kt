// Kotlin implementations of the platform services, as an Android shell would write them
// (there on Android Keystore; here on the JDK's providers, so they run on the JVM).
package tandem.tests

import java.math.BigInteger
import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
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

/** Wall clock, monotonic clock and boot id; `advance` moves both clocks for a test. */
class JvmClock : Clock {
    @Volatile var advancedMs = 0L
    val calls = java.util.concurrent.atomic.AtomicInteger()

    override fun wallMs(): Long {
        calls.incrementAndGet()
        return System.currentTimeMillis() + advancedMs
    }

    override fun monotonicMs(): Long = System.nanoTime() / 1_000_000 + advancedMs

    override fun bootId(): String = "jvm-" + ProcessHandle.current().pid()
}

/** The fused location provider: a fix set by the test, or none. */
class TestLocation : LocationSource {
    @Volatile var fix: LocationFix? = null

    override fun currentFix(): LocationFix? = fix

    fun standAt(latE7: Int, lonE7: Int, northM: Int = 0, mock: Boolean = false) {
        // 1e-7 degree of latitude is about 1.1 cm: 900 units per 10 m.
        fix = LocationFix(latE7 + northM * 90, lonE7, Datum.WGS84, 8u, Provider.GNSS, mock,
            System.currentTimeMillis())
    }
}

/** Seals secrets with AES-256-GCM under a key that never leaves this object (Android:
 *  a Keystore key); the label is authenticated, so a secret sealed for one label cannot be
 *  unsealed as another. */
class AesKeyStore : KeyStore {
    private val key: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    val sealed = java.util.concurrent.atomic.AtomicInteger()
    val unsealed = java.util.concurrent.atomic.AtomicInteger()

    override fun seal(label: String, secret: ByteArray): ByteArray {
        val nonce = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key, GCMParameterSpec(128, nonce))
        cipher.updateAAD(label.toByteArray())
        sealed.incrementAndGet()
        return nonce + cipher.doFinal(secret)
    }

    override fun unseal(label: String, sealed: ByteArray): ByteArray {
        if (sealed.size < 12 + 16) throw TandemException.Platform("sealed secret too short")
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
        cipher.updateAAD(label.toByteArray())
        unsealed.incrementAndGet()
        return try {
            cipher.doFinal(sealed, 12, sealed.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw TandemException.Platform("cannot unseal $label: wrong key or altered")
        }
    }
}

/** A P-256 device key the platform holds (Android Keystore / Secure Enclave are P-256
 *  only): signatures in the fixed-width r‖s form Tandem's verifiers expect. */
class P256Signer : Signer {
    private val pair = KeyPairGenerator.getInstance("EC")
        .apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
    val signatures = java.util.concurrent.atomic.AtomicInteger()

    override fun publicKey(): DevicePublicKey {
        val w = (pair.public as ECPublicKey).w
        return DevicePublicKey(SignatureAlgorithm.ECDSA_P256_SHA256,
            byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY))
    }

    override fun sign(message: ByteArray): ByteArray {
        signatures.incrementAndGet()
        return Signature.getInstance("SHA256withECDSAinP1363Format").run {
            initSign(pair.private)
            update(message)
            sign()
        }
    }

    private fun fixed32(n: BigInteger): ByteArray {
        val raw = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        return ByteArray(32 - raw.size) + raw
    }
}
