// Core's key store and device signer on Android Keystore. The AES key seals the store's
// keys (core encrypts the store and media with them); the EC P-256 key is the device key,
// generated in the TEE or StrongBox and never exported. Keystore signs ECDSA as DER and
// exports the public key as X.509; `tandem.shell.P256` converts both to what core takes.
package tandem.android.platform

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import java.security.KeyPairGenerator
import java.security.KeyStore as JcaKeyStore
import java.security.PrivateKey
import java.security.Signature
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import tandem.DevicePublicKey
import tandem.KeyStore
import tandem.SignatureAlgorithm
import tandem.Signer
import tandem.TandemException
import tandem.shell.P256

private const val PROVIDER = "AndroidKeyStore"

private fun keystore(): JcaKeyStore = JcaKeyStore.getInstance(PROVIDER).apply { load(null) }

/** Seals secrets with AES-256-GCM under a Keystore key; the label is authenticated. */
class AndroidKeyStoreSealer(private val alias: String = "tandem-store-key") : KeyStore {
    private fun key(): SecretKey {
        (keystore().getKey(alias, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER).run { init(spec); generateKey() }
    }

    override fun seal(label: String, secret: ByteArray): ByteArray = platform("seal") {
        // Keystore picks the nonce (callers may not); it is stored in front of the cipher text.
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.updateAAD(label.toByteArray())
        val sealed = cipher.doFinal(secret)
        byteArrayOf(cipher.iv.size.toByte()) + cipher.iv + sealed
    }

    override fun unseal(label: String, sealed: ByteArray): ByteArray = platform("unseal") {
        val ivLen = sealed.firstOrNull()?.toInt() ?: 0
        if (ivLen !in 12..16 || sealed.size < 1 + ivLen + 16) throw TandemException.Platform("sealed secret is malformed")
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, sealed, 1, ivLen))
        cipher.updateAAD(label.toByteArray())
        cipher.doFinal(sealed, 1 + ivLen, sealed.size - 1 - ivLen)
    }
}

/** The device key: EC P-256 in Keystore (StrongBox when the phone has one). */
class AndroidKeystoreSigner(private val alias: String = "tandem-device-key") : Signer {
    private val publicPoint: ByteArray

    init {
        val store = keystore()
        if (!store.containsAlias(alias)) generate()
        publicPoint = P256.spkiToPoint(keystore().getCertificate(alias).publicKey.encoded)
    }

    private fun generate() {
        fun spec(strongBox: Boolean) = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(java.security.spec.ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .apply { if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) setIsStrongBoxBacked(true) }
            .build()
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, PROVIDER)
        try {
            generator.initialize(spec(strongBox = true))
            generator.generateKeyPair()
        } catch (e: StrongBoxUnavailableException) {
            generator.initialize(spec(strongBox = false))
            generator.generateKeyPair()
        }
    }

    override fun publicKey(): DevicePublicKey = DevicePublicKey(SignatureAlgorithm.ECDSA_P256_SHA256, publicPoint)

    override fun sign(message: ByteArray): ByteArray = platform("sign") {
        val key = keystore().getKey(alias, null) as PrivateKey
        val der = Signature.getInstance("SHA256withECDSA").run {
            initSign(key)
            update(message)
            sign()
        }
        P256.derToRaw(der)
    }
}

/** Runs a Keystore call; its failures cross into core as platform errors (never a crash). */
private inline fun <T> platform(what: String, block: () -> T): T = try {
    block()
} catch (e: TandemException) {
    throw e
} catch (e: java.security.GeneralSecurityException) {
    throw TandemException.Platform("Keystore $what failed: ${e.javaClass.simpleName}")
}
