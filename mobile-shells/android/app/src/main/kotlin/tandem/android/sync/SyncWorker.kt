// Sync in the background with WorkManager: a periodic round (pull, push, purge) whenever
// the network is up, and an expedited one when the agent seals a visit and leaves the app
// (E03 counts 24 h from the seal). WorkManager retries with its own backoff; core keeps
// each bundle's retry schedule in its outbox, so a round only sends what is due.
package tandem.android.sync

import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Context
import android.content.pm.ServiceInfo
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.ForegroundInfo
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.OutOfQuotaPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.Worker
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import tandem.CancelToken
import tandem.TandemException
import tandem.android.R
import tandem.android.TandemApplication
import tandem.shell.ShellError

/** One sync round of the app's phone, on WorkManager's background thread (core blocks). */
class SyncWorker(context: Context, params: WorkerParameters) : Worker(context, params) {
    private val cancel = CancelToken()

    override fun doWork(): Result {
        val app = applicationContext as TandemApplication
        return try {
            app.phone.syncNow(app.server, null, cancel)
            Result.success()
        } catch (e: TandemException) {
            if (ShellError.of(e).retryable) Result.retry() else Result.failure()
        }
    }

    /** Stopped by the OS (quota used up, network lost): the round ends before its next
     *  request; what the server confirmed stays recorded. */
    override fun onStopped() {
        cancel.cancel()
    }

    override fun getForegroundInfo(): ForegroundInfo {
        // Expedited work runs as a foreground service before Android 12.
        val manager = applicationContext.getSystemService(NotificationManager::class.java)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O) {
            manager.createNotificationChannel(
                NotificationChannel(CHANNEL, applicationContext.getString(R.string.sync_channel), NotificationManager.IMPORTANCE_LOW),
            )
        }
        val notification = NotificationCompat.Builder(applicationContext, CHANNEL)
            .setSmallIcon(android.R.drawable.stat_sys_upload)
            .setContentTitle(applicationContext.getString(R.string.sync_text))
            .build()
        return if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            ForegroundInfo(2, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        } else {
            ForegroundInfo(2, notification)
        }
    }

    companion object {
        private const val CHANNEL = "sync"
        private const val PERIODIC = "tandem-sync"
        private const val NOW = "tandem-sync-now"
        private val online = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

        /** A round every hour while online (the shortest the OS allows is 15 min). */
        fun schedulePeriodic(context: Context) {
            val request = PeriodicWorkRequestBuilder<SyncWorker>(1, TimeUnit.HOURS)
                .setConstraints(online)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
        }

        /** A round now, expedited (user-initiated: a visit was sealed). */
        fun enqueueNow(context: Context) {
            val request = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(online)
                .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork(NOW, ExistingWorkPolicy.REPLACE, request)
        }
    }
}
