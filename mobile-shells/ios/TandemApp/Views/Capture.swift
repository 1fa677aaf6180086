// Camera-backed views: the QR scanner, the photo taker, and the receipt with the payer's
// signature pad rendered to PNG.
import AVFoundation
import SwiftUI
import Tandem

/// The camera preview; every QR text read goes to [onCode].
struct ScannerView: UIViewRepresentable {
    let onCode: (String) -> Void
    @StateObject private var camera = Camera()

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = camera.session
        view.previewLayer.videoGravity = .resizeAspectFill
        camera.start(onCode: onCode)
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {}

    static func dismantleUIView(_ view: PreviewView, coordinator: ()) {
        view.previewLayer.session?.stopRunning()
    }
}

final class PreviewView: UIView {
    override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
    var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
}

struct PhotoView: View {
    @EnvironmentObject var model: AppModel
    let visitId: String
    @StateObject private var camera = Camera()
    @State private var interior = false

    var body: some View {
        VStack {
            CameraPreview(camera: camera).frame(height: 300)
            // V08: interior photos need the occupant's recorded consent; core flags them otherwise.
            Toggle("Inside the home", isOn: $interior)
            Button("Take photo") {
                camera.takePhoto { result in
                    DispatchQueue.main.async {
                        switch result {
                        case .success(let jpeg): model.addPhoto(visitId, jpeg, interior: interior)
                        case .failure(let error): model.error = error.localizedDescription
                        }
                    }
                }
            }
        }
        .onAppear { camera.start(onCode: { _ in }) }
        .onDisappear { camera.stop() }
    }
}

struct CameraPreview: UIViewRepresentable {
    let camera: Camera

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = camera.session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {}
}

struct ReceiptView: View {
    @EnvironmentObject var model: AppModel
    let visitId: String
    @State private var payer = ""
    @State private var amount = ""
    @State private var role: PersonMet = .debtor
    @State private var strokes: [[CGPoint]] = []

    var body: some View {
        VStack(alignment: .leading) {
            TextField("Payer's name", text: $payer)
            Picker("Payer", selection: $role) {
                Text("Debtor").tag(PersonMet.debtor)
                Text("Guarantor").tag(PersonMet.guarantor)
                Text("Third party").tag(PersonMet.thirdParty)
            }
            TextField("Amount (yuan)", text: $amount).keyboardType(.decimalPad)
            Text("Payer signs here")
            SignaturePad(strokes: $strokes).frame(height: 160).background(Color.white).border(Color.gray)
            HStack {
                Button("Clear") { strokes = [] }
                Button("Both agents sign") {
                    guard let fen = fen(amount) else { model.error = "\"\(amount)\" is not an amount in yuan."; return }
                    let png = strokes.contains { $0.count > 1 } ? signaturePNG(strokes) : Data()
                    model.receipt(visitId, ReceiptInput(payerRole: role, payerName: payer, amountFen: fen, method: .cash, payerSignaturePng: png))
                }
            }
        }
    }
}

/// `500`, `500.5`, `¥1,234.56` in fen, without floating point; nil when not an amount.
func fen(_ text: String) -> Int64? {
    let cleaned = text.replacingOccurrences(of: "¥", with: "").replacingOccurrences(of: ",", with: "").trimmingCharacters(in: .whitespaces)
    let parts = cleaned.split(separator: ".", omittingEmptySubsequences: false)
    guard (1...2).contains(parts.count), let whole = Int64(parts[0]), whole >= 0, parts[0].count <= 13 else { return nil }
    guard parts.count == 2 else { return whole * 100 }
    guard (1...2).contains(parts[1].count), parts[1].allSatisfy(\.isNumber), let cents = Int64(parts[1].padding(toLength: 2, withPad: "0", startingAt: 0)) else { return nil }
    return whole * 100 + cents
}

struct SignaturePad: View {
    @Binding var strokes: [[CGPoint]]

    var body: some View {
        Canvas { context, _ in
            for stroke in strokes { context.stroke(path(stroke), with: .color(.black), lineWidth: 3) }
        }
        .gesture(DragGesture(minimumDistance: 0).onChanged { value in
            if value.translation == .zero || strokes.isEmpty { strokes.append([value.location]) } else { strokes[strokes.count - 1].append(value.location) }
        })
    }
}

private func path(_ points: [CGPoint]) -> Path {
    var p = Path()
    if let first = points.first { p.move(to: first); points.dropFirst().forEach { p.addLine(to: $0) } }
    return p
}

/// The pad's strokes, black on white, as PNG (ImageRenderer, iOS 16).
@MainActor
func signaturePNG(_ strokes: [[CGPoint]]) -> Data {
    let view = Canvas { context, _ in
        for stroke in strokes { context.stroke(path(stroke), with: .color(.black), lineWidth: 3) }
    }
    .frame(width: 600, height: 200)
    .background(Color.white)
    return ImageRenderer(content: view).uiImage?.pngData() ?? Data()
}
