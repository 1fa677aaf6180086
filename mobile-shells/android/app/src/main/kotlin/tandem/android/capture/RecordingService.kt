// Keeps the microphone running with the screen off or the app in the background, as
// Android requires for continuous recording: a foreground service of type microphone.
package tandem.android.capture

import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.os.Build
import android.os.IBinder
import androidx.core.app.NotificationCompat
import androidx.core.app.ServiceCompat
import tandem.android.R
import tandem.shell.AudioSession

/** The recording's foreground service; one recording at a time. */
class RecordingService : Service() {
    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val manager = getSystemService(NotificationManager::class.java)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O) {
            manager.createNotificationChannel(NotificationChannel(CHANNEL, getString(R.string.recording_channel), NotificationManager.IMPORTANCE_LOW))
        }
        val notification = NotificationCompat.Builder(this, CHANNEL)
            .setSmallIcon(android.R.drawable.ic_btn_speak_now)
            .setContentTitle(getString(R.string.recording_text))
            .setOngoing(true)
            .build()
        val type = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE else 0
        ServiceCompat.startForeground(this, 1, notification, type)
        pending?.let { session ->
            pending = null
            recorder = Recorder(session).also { it.start() }
        }
        return START_NOT_STICKY
    }

    override fun onDestroy() {
        recorder?.stop()
        recorder = null
        super.onDestroy()
    }

    companion object {
        private const val CHANNEL = "recording"
        // The session crosses from the view model to the service in-process (it holds the
        // phone object, which an Intent cannot carry).
        @Volatile private var pending: AudioSession? = null
        @Volatile private var recorder: Recorder? = null

        /** Starts recording [session]. */
        fun start(context: Context, session: AudioSession) {
            pending = session
            context.startForegroundService(Intent(context, RecordingService::class.java))
        }

        /** Stops the recording and the service. */
        fun stop(context: Context) {
            recorder?.stop()
            recorder = null
            context.stopService(Intent(context, RecordingService::class.java))
        }
    }
}
