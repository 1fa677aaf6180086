// QR frame texts made the way a phone shows them (`TH1/<id>/<i>/<n>/<base45 chunk>`,
// docs/handshake.md): test input for the frame assembler, so that a test can show a code of
// any size without a phone.
package tandem.tests

import java.security.MessageDigest

private const val BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ \$%*+-./:"

private fun base45(bytes: ByteArray): String = buildString {
    for (pair in bytes.toList().chunked(2)) {
        var n = pair.fold(0) { acc, b -> acc * 256 + (b.toInt() and 0xff) }
        repeat(pair.size + 1) {
            append(BASE45[n % 45])
            n /= 45
        }
    }
}

/** The frames of [payload], 660 bytes a frame, in order. */
fun qrFrames(payload: ByteArray): List<String> {
    val id = MessageDigest.getInstance("SHA-256").digest(payload).take(8)
        .joinToString("") { "%02X".format(it) }
    val chunks = payload.toList().chunked(660).ifEmpty { listOf(emptyList()) }
    return chunks.mapIndexed { i, chunk -> "TH1/$id/${i + 1}/${chunks.size}/${base45(chunk.toByteArray())}" }
}
