// Core's key store: AES-256-GCM under a key kept in the Keychain, this device only, readable
// after the first unlock (sync runs in the background). The label is authenticated.
import CryptoKit
import Foundation
import Security
import Tandem

/// One generic-password Keychain item of this app.
struct Keychain {
    let account: String

    func read() throws -> Data? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: "com.tandem.field",
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data else {
            throw TandemError.Platform(reason: "Keychain read failed (\(status))")
        }
        return data
    }

    func write(_ data: Data) throws {
        let item: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: "com.tandem.field",
            kSecAttrAccount as String: account,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            kSecValueData as String: data,
        ]
        let status = SecItemAdd(item as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw TandemError.Platform(reason: "Keychain write failed (\(status))")
        }
    }
}

/// Seals core's secrets (the store keys) under the Keychain key.
final class KeychainKeyStore: Tandem.KeyStore {
    private let key: SymmetricKey

    init(keychain: Keychain = Keychain(account: "tandem-store-key")) throws {
        if let raw = try keychain.read() {
            key = SymmetricKey(data: raw)
        } else {
            let fresh = SymmetricKey(size: .bits256)
            try keychain.write(fresh.withUnsafeBytes { Data($0) })
            key = fresh
        }
    }

    func seal(label: String, secret: Data) throws -> Data {
        do {
            let box = try AES.GCM.seal(secret, using: key, authenticating: Data(label.utf8))
            guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
            return combined
        } catch {
            throw TandemError.Platform(reason: "cannot seal \(label)")
        }
    }

    func unseal(label: String, sealed: Data) throws -> Data {
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Data(label.utf8))
        } catch {
            throw TandemError.Platform(reason: "cannot unseal \(label): wrong key or altered")
        }
    }
}
