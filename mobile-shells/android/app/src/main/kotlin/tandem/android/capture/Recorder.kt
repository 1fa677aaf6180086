// Continuous audio (V07): AudioRecord at 16 kHz mono 16-bit, read in 100 ms chunks and
// handed to core, which writes hashed WAV segments. A failed push stops the loop; the
// session keeps the error for the screen and core records the gap when recording resumes.
package tandem.android.capture

import android.annotation.SuppressLint
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.MediaRecorder
import tandem.shell.Answer
import tandem.shell.AudioSession

/** Reads the microphone into an [AudioSession] on its own thread. */
class Recorder(private val session: AudioSession) {
    @Volatile private var running = false
    private var thread: Thread? = null

    /** Starts reading into the started session (the caller holds RECORD_AUDIO and runs a
     *  microphone foreground service). */
    @SuppressLint("MissingPermission")
    fun start() {
        if (!session.recording) return
        val minimum = AudioRecord.getMinBufferSize(SAMPLE_RATE, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val chunk = SAMPLE_RATE / 10
        val record = AudioRecord(
            MediaRecorder.AudioSource.MIC,
            SAMPLE_RATE,
            AudioFormat.CHANNEL_IN_MONO,
            AudioFormat.ENCODING_PCM_16BIT,
            maxOf(minimum, chunk * 2 * 4),
        )
        running = true
        thread = Thread({
            val buffer = ShortArray(chunk)
            record.startRecording()
            try {
                while (running) {
                    val n = record.read(buffer, 0, buffer.size)
                    if (n < 0) break // ERROR_INVALID_OPERATION / ERROR_DEAD_OBJECT: the mic is gone.
                    if (session.push(buffer, n) is Answer.Failed) break
                }
            } finally {
                record.stop()
                record.release()
            }
        }, "tandem-audio").apply { start() }
    }

    /** Stops the loop and waits for the last chunk to be handed over. */
    fun stop() {
        running = false
        thread?.join(2_000)
        thread = null
    }

    companion object {
        /** Speech needs no more; core takes any rate. */
        const val SAMPLE_RATE = 16_000
    }
}
