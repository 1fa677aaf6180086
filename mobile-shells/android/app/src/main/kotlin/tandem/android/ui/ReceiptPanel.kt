// The receipt form and the payer's signature pad (C02). The pad's strokes become a PNG
// here; core hashes that PNG into the receipt both agents sign.
package tandem.android.ui

import android.graphics.Bitmap
import android.graphics.Paint
import android.graphics.Path as AndroidPath
import androidx.compose.foundation.Canvas
import androidx.compose.foundation.background
import androidx.compose.foundation.gestures.detectDragGestures
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.Path
import androidx.compose.ui.graphics.drawscope.Stroke
import androidx.compose.ui.input.pointer.pointerInput
import androidx.compose.ui.layout.onSizeChanged
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.IntSize
import androidx.compose.ui.unit.dp
import java.io.ByteArrayOutputStream
import tandem.PaymentMethod
import tandem.PersonMet
import tandem.shell.ReceiptForm
import tandem.shell.SignatureStrokes
import tandem.shell.methodLabel
import tandem.shell.personLabel

@Composable
fun ReceiptPanel(onSubmit: (ReceiptForm) -> Unit) {
    var form by remember { mutableStateOf(ReceiptForm()) }
    var strokes by remember { mutableStateOf(SignatureStrokes()) }
    var padSize by remember { mutableStateOf(IntSize.Zero) }
    Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        OutlinedTextField(form.payerName, { form = form.copy(payerName = it) }, label = { Text("Payer's name") })
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            for (role in listOf(PersonMet.DEBTOR, PersonMet.GUARANTOR, PersonMet.THIRD_PARTY)) {
                val chosen = form.payerRole == role
                OutlinedButton(onClick = { form = form.copy(payerRole = role) }) { Text(personLabel(role) + if (chosen) " ✓" else "") }
            }
        }
        OutlinedTextField(
            form.amountText,
            { form = form.copy(amountText = it) },
            label = { Text("Amount (yuan)") },
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Decimal),
            supportingText = { form.amountPreview?.let { Text(it) } },
        )
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            for (method in listOf(PaymentMethod.CASH, PaymentMethod.CHEQUE)) {
                OutlinedButton(onClick = { form = form.copy(method = method) }) {
                    Text(methodLabel(method) + if (form.method == method) " ✓" else "")
                }
            }
        }
        Text("Payer signs here")
        Canvas(
            Modifier.fillMaxWidth().height(180.dp).background(Color.White)
                .onSizeChanged { padSize = it }
                .pointerInput(Unit) {
                    detectDragGestures(
                        onDragStart = { p: Offset -> strokes = strokes.begin(p.x, p.y) },
                        onDrag = { change, _ -> strokes = strokes.extend(change.position.x, change.position.y) },
                    )
                },
        ) {
            for (stroke in strokes.strokes) {
                val path = Path()
                stroke.forEachIndexed { i, (x, y) -> if (i == 0) path.moveTo(x, y) else path.lineTo(x, y) }
                drawPath(path, Color.Black, style = Stroke(width = 4f))
            }
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            OutlinedButton(onClick = { strokes = SignatureStrokes() }) { Text("Clear") }
            Button(onClick = {
                val png = if (strokes.isBlank) ByteArray(0) else signaturePng(strokes, padSize)
                onSubmit(form.copy(signaturePng = png))
            }) { Text("Both agents sign") }
        }
    }
}

/** The pad's strokes drawn black on white into a PNG the size of the pad. */
fun signaturePng(strokes: SignatureStrokes, size: IntSize): ByteArray {
    val bitmap = Bitmap.createBitmap(size.width.coerceAtLeast(1), size.height.coerceAtLeast(1), Bitmap.Config.ARGB_8888)
    val canvas = android.graphics.Canvas(bitmap)
    canvas.drawColor(android.graphics.Color.WHITE)
    val paint = Paint().apply {
        color = android.graphics.Color.BLACK
        style = Paint.Style.STROKE
        strokeWidth = 4f
        isAntiAlias = true
        strokeCap = Paint.Cap.ROUND
        strokeJoin = Paint.Join.ROUND
    }
    for (stroke in strokes.strokes) {
        val path = AndroidPath()
        stroke.forEachIndexed { i, (x, y) -> if (i == 0) path.moveTo(x, y) else path.lineTo(x, y) }
        canvas.drawPath(path, paint)
    }
    return ByteArrayOutputStream().also { bitmap.compress(Bitmap.CompressFormat.PNG, 100, it) }.toByteArray()
}
