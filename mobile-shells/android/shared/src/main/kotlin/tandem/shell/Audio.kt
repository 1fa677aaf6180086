// Continuous audio (V07): the platform recorder hands 16-bit samples; core writes hashed WAV
// segments. This class carries them across and keeps what the recording screen shows.
package tandem.shell

import tandem.TandemPhone

/** 16-bit samples as little-endian bytes, the layout core's `push_audio` takes. */
fun pcm16le(samples: ShortArray, count: Int = samples.size): ByteArray {
    require(count in 0..samples.size) { "count $count outside 0..${samples.size}" }
    val out = ByteArray(count * 2)
    for (i in 0 until count) {
        val s = samples[i].toInt()
        out[2 * i] = (s and 0xFF).toByte()
        out[2 * i + 1] = (s shr 8 and 0xFF).toByte()
    }
    return out
}

/** One visit's recording: start, chunks, stop. Every call is short (a chunk is appended and
 *  a segment closes now and then) but touches the disk: call it from the recorder's thread. */
class AudioSession(private val phone: TandemPhone, val visitId: String, val sampleRate: Int) {
    /** Samples handed to core so far. */
    var samples: Long = 0
        private set

    /** Segments core closed and chained so far (hex digests). */
    val segments = mutableListOf<String>()

    /** The last error: recording stops on it and the screen says why (core logs the gap). */
    var error: ShellError? = null
        private set

    /** Whether chunks are being taken. */
    var recording = false
        private set

    /** Starts recording (mono, 16-bit at [sampleRate]). */
    fun start(): Answer<Unit> = attempt { phone.startAudio(visitId, sampleRate.toUInt()) }.also {
        recording = it is Answer.Done
        error = it.errorOrNull()
    }

    /** Hands [count] samples of [buffer] (one `AudioRecord.read`) to core. */
    fun push(buffer: ShortArray, count: Int): Answer<List<String>> {
        if (!recording || count <= 0) return Answer.Done(emptyList())
        val answer = attempt { phone.pushAudio(visitId, pcm16le(buffer, count)) }
        when (answer) {
            is Answer.Done -> {
                samples += count
                segments += answer.value
            }
            is Answer.Failed -> {
                recording = false
                error = answer.error
            }
        }
        return answer
    }

    /** Stops; the open segment closes and is chained. */
    fun stop(): Answer<String?> {
        recording = false
        return attempt { phone.stopAudio(visitId) }.also { answer ->
            answer.valueOrNull()?.let { segments += it }
            answer.errorOrNull()?.let { error = it }
        }
    }

    /** `Recording 12 min 03 s · 12 segments`. */
    fun status(): String {
        val length = Format.duration(samples * 1000 / sampleRate)
        val state = if (recording) "Recording" else "Stopped"
        return "$state $length · ${segments.size} segment" + (if (segments.size == 1) "" else "s")
    }
}
