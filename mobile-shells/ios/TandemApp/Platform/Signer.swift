// The device key in the Secure Enclave (P-256; the private half never leaves the chip).
// CryptoKit gives the fixed-width r‖s signature and the 65-byte public point core takes,
// so no DER conversion is needed here. The key's opaque handle is kept in the Keychain.
import CryptoKit
import Foundation
import Tandem

/// A Secure Enclave P-256 key as core's device signer.
final class SecureEnclaveSigner: Tandem.Signer {
    private let key: SecureEnclave.P256.Signing.PrivateKey

    /// Loads the key, or creates it on first start.
    init(keychain: Keychain = Keychain(account: "tandem-device-key")) throws {
        if let handle = try keychain.read() {
            key = try SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: handle)
        } else {
            key = try SecureEnclave.P256.Signing.PrivateKey()
            try keychain.write(key.dataRepresentation)
        }
    }

    func publicKey() -> DevicePublicKey {
        DevicePublicKey(alg: .ecdsaP256Sha256, key: key.publicKey.x963Representation)
    }

    func sign(message: Data) throws -> Data {
        do {
            return try key.signature(for: message).rawRepresentation
        } catch {
            throw TandemError.Platform(reason: "Secure Enclave signing failed: \(error.localizedDescription)")
        }
    }
}

/// A software P-256 key for the simulator, which has no Secure Enclave.
final class SimulatorSigner: Tandem.Signer {
    private let key: P256.Signing.PrivateKey

    init(keychain: Keychain = Keychain(account: "tandem-simulator-key")) throws {
        if let raw = try keychain.read() {
            key = try P256.Signing.PrivateKey(rawRepresentation: raw)
        } else {
            key = P256.Signing.PrivateKey()
            try keychain.write(key.rawRepresentation)
        }
    }

    func publicKey() -> DevicePublicKey {
        DevicePublicKey(alg: .ecdsaP256Sha256, key: key.publicKey.x963Representation)
    }

    func sign(message: Data) throws -> Data {
        do {
            return try key.signature(for: message).rawRepresentation
        } catch {
            throw TandemError.Platform(reason: "signing failed: \(error.localizedDescription)")
        }
    }
}
