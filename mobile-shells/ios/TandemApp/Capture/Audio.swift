// Continuous audio (V07): AVAudioEngine's input, converted to 16 kHz mono 16-bit PCM and
// handed to core in chunks; core writes hashed WAV segments. The `audio` background mode
// keeps the engine running with the screen locked.
import AVFoundation
import Tandem

final class VisitRecorder {
    static let sampleRate: Double = 16_000
    private let engine = AVAudioEngine()
    private let phone: TandemPhone
    private let visitId: String
    private let queue = DispatchQueue(label: "tandem.audio")
    private(set) var error: TandemError?

    init(phone: TandemPhone, visitId: String) {
        self.phone = phone
        self.visitId = visitId
    }

    func start() throws {
        let session = AVAudioSession.sharedInstance()
        try session.setCategory(.record, mode: .spokenAudio)
        try session.setActive(true)
        try phone.startAudio(visit: visitId, sampleRate: UInt32(Self.sampleRate))
        let input = engine.inputNode
        let from = input.outputFormat(forBus: 0)
        let to = AVAudioFormat(commonFormat: .pcmFormatInt16, sampleRate: Self.sampleRate, channels: 1, interleaved: true)!
        guard let converter = AVAudioConverter(from: from, to: to) else {
            throw TandemError.Platform(reason: "no converter from \(from) to 16 kHz PCM")
        }
        input.installTap(onBus: 0, bufferSize: 4096, format: from) { [weak self] buffer, _ in
            guard let self else { return }
            let capacity = AVAudioFrameCount(Double(buffer.frameLength) * Self.sampleRate / from.sampleRate) + 1
            guard let out = AVAudioPCMBuffer(pcmFormat: to, frameCapacity: capacity) else { return }
            var fed = false
            _ = converter.convert(to: out, error: nil) { _, status in
                if fed { status.pointee = .noDataNow; return nil }
                fed = true
                status.pointee = .haveData
                return buffer
            }
            // Int16 in memory is little-endian on every iOS device: the layout core takes.
            let bytes = Data(bytes: out.int16ChannelData![0], count: Int(out.frameLength) * 2)
            self.queue.async {
                guard self.error == nil else { return }
                do { _ = try self.phone.pushAudio(visit: self.visitId, pcm16le: bytes) } catch let e as TandemError { self.error = e } catch {}
            }
        }
        try engine.start()
    }

    /// Stops; core closes and chains the open segment.
    func stop() throws {
        engine.inputNode.removeTap(onBus: 0)
        engine.stop()
        try queue.sync { _ = try phone.stopAudio(visit: visitId) }
    }
}
