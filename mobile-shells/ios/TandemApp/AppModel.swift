// The app's state: which screen is on, and one method per action, each one call into core
// on a background queue. No rule is decided here; a refusal arrives as
// `TandemError.Refused(rule:reason:)` and is shown with its rule id.
import Foundation
import Tandem
import UIKit

enum AppScreen {
    case signIn
    case visits([VisitSummary], SyncState?)
    case visit(VisitSummary, CaseView, [EventSummary])
    case lead(visitId: String, purpose: CoSignPurpose, frames: [String])
    case partnerScanning
    case partnerReview(ChallengeReview, ChallengeView)
    case partnerReply([String])
    case sync(SyncState, String?)
}

@MainActor
final class AppModel: ObservableObject {
    @Published private(set) var screen: AppScreen = .signIn
    @Published private(set) var working = false
    @Published var error: String?
    @Published var notice: String?

    let phone: TandemPhone
    let server: Server
    let location: PhoneLocation
    private let queue = DispatchQueue(label: "tandem.core")
    private var scanned = FrameAssembler() // the code being scanned: core reads its frames
    private var recorder: VisitRecorder?

    init(serverURL: String) throws {
        location = PhoneLocation()
        let signer: Tandem.Signer
        #if targetEnvironment(simulator)
        signer = try SimulatorSigner()
        #else
        signer = try SecureEnclaveSigner()
        #endif
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0].appendingPathComponent("tandem")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        phone = try TandemPhone.open(config: PhoneConfig(
            dir: dir.path, keystore: try KeychainKeyStore(), clock: SystemClock(), location: location, signer: signer))
        server = Server(baseUrl: serverURL)
        location.start()
        perform({ try $0.identity() }) { [weak self] _ in self?.showVisits() }
    }

    /// Runs [call] off the main thread; [done] gets its value back on the main thread.
    private func perform<T>(_ call: @escaping (TandemPhone) throws -> T, done: @escaping (T) -> Void) {
        working = true
        let phone = self.phone
        queue.async {
            let result = Result { try call(phone) }
            DispatchQueue.main.async {
                self.working = false
                switch result {
                case .success(let value): self.error = nil; done(value)
                case .failure(let e): self.error = describe(e)
                }
            }
        }
    }

    func signIn(code: String) {
        let server = self.server
        perform({ try $0.enroll(server: server, code: code.trimmingCharacters(in: .whitespaces)) }) { [weak self] _ in
            self?.syncNow()
        }
    }

    func syncNow() {
        let server = self.server
        perform({ phone -> (SyncRound, SyncState) in
            let round = try phone.syncNow(server: server, progress: nil, cancel: nil)
            return (round, try phone.syncStatus())
        }) { [weak self] round, status in
            self?.screen = .sync(status, "\(round.pushed.acknowledged) uploaded, \(round.pulled.assignments.count) new")
        }
    }

    func showVisits() {
        perform({ (try $0.visits(), try? $0.syncStatus()) }) { [weak self] visits, status in
            self?.screen = .visits(visits, status)
        }
    }

    func open(_ visitId: String) {
        perform({ (try $0.visit(visit: visitId), try $0.caseOf(visit: visitId), try $0.events(visit: visitId)) }) { [weak self] v, c, e in
            self?.screen = .visit(v, c, e)
        }
    }

    // MARK: co-signing, lead side

    func beginLead(_ visitId: String, _ purpose: CoSignPurpose, _ begin: @escaping (TandemPhone) throws -> [String]) {
        scanned = FrameAssembler()
        perform(begin) { [weak self] frames in self?.screen = .lead(visitId: visitId, purpose: purpose, frames: frames) }
    }

    func checkIn(_ visitId: String, outsideFenceReason: String? = nil) {
        beginLead(visitId, .checkIn) { try $0.beginCheckIn(visit: visitId, outsideFenceReason: outsideFenceReason) }
    }

    func checkOut(_ visitId: String) { beginLead(visitId, .checkOut) { try $0.beginCheckOut(visit: visitId) } }

    func seal(_ visitId: String) { beginLead(visitId, .seal) { try $0.beginSeal(visit: visitId) } }

    func receipt(_ visitId: String, _ input: ReceiptInput) { beginLead(visitId, .receipt) { try $0.beginReceipt(visit: visitId, receipt: input) } }

    /// A code the lead's camera read: once the reply is whole, core verifies and records it.
    func leadScanned(_ text: String) {
        guard case .lead(let visitId, _, _) = screen, let reply = collect(text) else { return }
        perform({ try $0.completePayload(reply: reply) }) { [weak self] _ in
            self?.notice = "Recorded with both signatures"
            self?.open(visitId)
        }
    }

    // MARK: co-signing, partner side

    func beginPartner() {
        scanned = FrameAssembler()
        screen = .partnerScanning
    }

    func partnerScanned(_ text: String) {
        guard case .partnerScanning = screen, let challenge = collect(text) else { return }
        perform({ phone -> (ChallengeReview, ChallengeView) in
            let review = try phone.reviewChallengePayload(challenge: challenge)
            return (review, review.summary())
        }) { [weak self] review, view in self?.screen = .partnerReview(review, view) }
    }

    func partnerAgree() {
        guard case .partnerReview(let review, _) = screen else { return }
        perform({ try $0.answerChallenge(review: review) }) { [weak self] reply in self?.screen = .partnerReply(reply) }
    }

    /// Hands a scanned text to core's frame assembler: the whole message once every frame is
    /// in. What core does not take as a frame (another QR code in view) is skipped; a code of
    /// a newer message starts over.
    private func collect(_ text: String) -> Data? {
        (try? scanned.push(frame: text))?.payload
    }

    // MARK: capture

    func addNote(_ visitId: String, _ text: String) {
        perform({ try $0.addNote(visit: visitId, text: text) }) { [weak self] recorded in
            self?.notice = findings("Note recorded", recorded.violations)
            self?.open(visitId)
        }
    }

    func addPhoto(_ visitId: String, _ jpeg: Data, interior: Bool) {
        perform({ try $0.capturePhoto(visit: visitId, image: jpeg, interior: interior) }) { [weak self] photo in
            self?.notice = findings("Photo kept", photo.recorded.violations)
            self?.open(visitId)
        }
    }

    var isRecording: Bool { recorder != nil }

    func startRecording(_ visitId: String) {
        let recorder = VisitRecorder(phone: phone, visitId: visitId)
        do { try recorder.start(); self.recorder = recorder } catch { self.error = describe(error) }
    }

    func stopRecording() {
        do { try recorder?.stop() } catch { self.error = describe(error) }
        recorder = nil
    }
}

/// An error for the screen: a rule's refusal leads with its id.
func describe(_ error: Error) -> String {
    guard let e = error as? TandemError else { return error.localizedDescription }
    switch e {
    case .Refused(let rule, let message): return "\(rule) blocked: \(message)"
    case .Network(let message): return "Offline: \(message)"
    case .Server(let status, _, let message): return "Server \(status): \(message)"
    default: return "\(e)"
    }
}

/// A confirmation with the warnings and flags core returned, each with its rule id.
func findings(_ what: String, _ violations: [RuleViolation]) -> String {
    ([what] + violations.map { "\($0.rule): \($0.message)" }).joined(separator: "\n")
}

/// Fen as yuan (`¥1,234.56`): integer arithmetic, no floating point.
func yuan(_ fen: Int64) -> String {
    let sign = fen < 0 ? "-" : ""
    let magnitude = fen.magnitude
    let grouped = NumberFormatter.localizedString(from: NSNumber(value: magnitude / 100), number: .decimal)
    return "\(sign)¥\(grouped).\(String(format: "%02d", magnitude % 100))"
}
