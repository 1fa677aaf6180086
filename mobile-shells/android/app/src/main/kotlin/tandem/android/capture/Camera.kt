// CameraX for the two camera jobs: reading the other phone's QR codes (ML Kit) and taking
// evidence photos as the camera's own JPEG bytes (core keeps them as taken).
package tandem.android.capture

import android.content.Context
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageCapture
import androidx.camera.core.ImageCaptureException
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.remember
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.platform.LocalLifecycleOwner
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import com.google.mlkit.vision.barcode.BarcodeScannerOptions
import com.google.mlkit.vision.barcode.BarcodeScanning
import com.google.mlkit.vision.barcode.common.Barcode
import com.google.mlkit.vision.common.InputImage
import java.util.concurrent.Executors

/** The camera preview, reading every QR code in view and handing its text to [onText]
 *  (on the main thread; the same text arrives many times, the collector ignores repeats). */
@Composable
fun QrScanner(onText: (String) -> Unit, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    val owner = LocalLifecycleOwner.current
    val preview = remember { PreviewView(context) }
    val analysisThread = remember { Executors.newSingleThreadExecutor() }
    DisposableEffect(owner) {
        val scanner = BarcodeScanning.getClient(BarcodeScannerOptions.Builder().setBarcodeFormats(Barcode.FORMAT_QR_CODE).build())
        val providerFuture = ProcessCameraProvider.getInstance(context)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .build()
            analysis.setAnalyzer(analysisThread) { proxy -> read(scanner, proxy, context, onText) }
            val shown = Preview.Builder().build().also { it.surfaceProvider = preview.surfaceProvider }
            provider.unbindAll()
            provider.bindToLifecycle(owner, CameraSelector.DEFAULT_BACK_CAMERA, shown, analysis)
        }, ContextCompat.getMainExecutor(context))
        onDispose {
            providerFuture.get().unbindAll()
            scanner.close()
            analysisThread.shutdown()
        }
    }
    AndroidView(factory = { preview }, modifier = modifier)
}

@androidx.annotation.OptIn(androidx.camera.core.ExperimentalGetImage::class)
private fun read(scanner: com.google.mlkit.vision.barcode.BarcodeScanner, proxy: ImageProxy, context: Context, onText: (String) -> Unit) {
    val image = proxy.image ?: return proxy.close()
    scanner.process(InputImage.fromMediaImage(image, proxy.imageInfo.rotationDegrees))
        .addOnSuccessListener(ContextCompat.getMainExecutor(context)) { codes ->
            codes.mapNotNull { it.rawValue }.forEach(onText)
        }
        .addOnCompleteListener { proxy.close() }
}

/** Takes photos as JPEG bytes, exactly as the camera encoded them. */
class PhotoCamera(private val context: Context) {
    /** Bound to the preview by [PhotoPreview]. */
    val capture: ImageCapture = ImageCapture.Builder()
        .setCaptureMode(ImageCapture.CAPTURE_MODE_MAXIMIZE_QUALITY)
        .build()

    /** Takes one photo; [onJpeg] gets the bytes (on a background thread), [onError] why not. */
    fun take(onJpeg: (ByteArray) -> Unit, onError: (String) -> Unit) {
        capture.takePicture(Executors.newSingleThreadExecutor(), object : ImageCapture.OnImageCapturedCallback() {
            override fun onCaptureSuccess(image: ImageProxy) {
                image.use {
                    // In-memory captures are JPEG: one plane holding the whole file.
                    val buffer = it.planes[0].buffer
                    onJpeg(ByteArray(buffer.remaining()).also(buffer::get))
                }
            }

            override fun onError(exception: ImageCaptureException) {
                onError("The camera could not take the photo (${exception.imageCaptureError}).")
            }
        })
    }
}

/** The preview for [camera]. */
@Composable
fun PhotoPreview(camera: PhotoCamera, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    val owner = LocalLifecycleOwner.current
    val preview = remember { PreviewView(context) }
    DisposableEffect(owner) {
        val providerFuture = ProcessCameraProvider.getInstance(context)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val shown = Preview.Builder().build().also { it.surfaceProvider = preview.surfaceProvider }
            provider.unbindAll()
            provider.bindToLifecycle(owner, CameraSelector.DEFAULT_BACK_CAMERA, shown, camera.capture)
        }, ContextCompat.getMainExecutor(context))
        onDispose { providerFuture.get().unbindAll() }
    }
    AndroidView(factory = { preview }, modifier = modifier)
}
