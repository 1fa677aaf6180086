// One AVCaptureSession for both camera jobs: QR codes from the other phone (metadata
// output) and evidence photos as JPEG (core refuses HEIC, so the photo output is asked for
// JPEG explicitly).
import AVFoundation
import CoreImage.CIFilterBuiltins
import UIKit

final class Camera: NSObject, ObservableObject, AVCaptureMetadataOutputObjectsDelegate, AVCapturePhotoCaptureDelegate {
    let session = AVCaptureSession()
    private let photos = AVCapturePhotoOutput()
    private let codes = AVCaptureMetadataOutput()
    private let queue = DispatchQueue(label: "tandem.camera")
    private var onCode: ((String) -> Void)?
    private var onPhoto: ((Result<Data, Error>) -> Void)?

    func start(onCode: @escaping (String) -> Void) {
        self.onCode = onCode
        queue.async { [self] in
            if session.inputs.isEmpty, let device = AVCaptureDevice.default(for: .video),
               let input = try? AVCaptureDeviceInput(device: device) {
                session.beginConfiguration()
                session.sessionPreset = .photo
                if session.canAddInput(input) { session.addInput(input) }
                if session.canAddOutput(photos) { session.addOutput(photos) }
                if session.canAddOutput(codes) {
                    session.addOutput(codes)
                    codes.setMetadataObjectsDelegate(self, queue: .main)
                    codes.metadataObjectTypes = [.qr]
                }
                session.commitConfiguration()
            }
            session.startRunning()
        }
    }

    func stop() { queue.async { [self] in session.stopRunning() } }

    func metadataOutput(_ output: AVCaptureMetadataOutput, didOutput objects: [AVMetadataObject], from connection: AVCaptureConnection) {
        for case let code as AVMetadataMachineReadableCodeObject in objects {
            if let text = code.stringValue { onCode?(text) }
        }
    }

    /// Takes a photo; [done] gets the JPEG file bytes as the camera encoded them.
    func takePhoto(_ done: @escaping (Result<Data, Error>) -> Void) {
        onPhoto = done
        let settings = AVCapturePhotoSettings(format: [AVVideoCodecKey: AVVideoCodecType.jpeg])
        photos.capturePhoto(with: settings, delegate: self)
    }

    func photoOutput(_ output: AVCapturePhotoOutput, didFinishProcessingPhoto photo: AVCapturePhoto, error: Error?) {
        if let error { onPhoto?(.failure(error)) } else if let data = photo.fileDataRepresentation() { onPhoto?(.success(data)) }
        onPhoto = nil
    }
}

/// A handshake frame as a QR image (base45 text: QR's alphanumeric mode).
func qrImage(_ text: String) -> UIImage {
    let filter = CIFilter.qrCodeGenerator()
    filter.message = Data(text.utf8)
    filter.correctionLevel = "M"
    let scaled = filter.outputImage!.transformed(by: CGAffineTransform(scaleX: 8, y: 8))
    let cg = CIContext().createCGImage(scaled, from: scaled.extent)!
    return UIImage(cgImage: cg)
}
