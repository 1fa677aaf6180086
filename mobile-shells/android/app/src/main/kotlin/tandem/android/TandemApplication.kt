// Opens the phone once per process: the store in the app's private files, keys in
// Android Keystore, time from the system, position from the fused provider.
package tandem.android

import android.app.Application
import java.time.ZoneId
import tandem.PhoneConfig
import tandem.Server
import tandem.TandemPhone
import tandem.android.platform.AndroidClock
import tandem.android.platform.AndroidKeyStoreSealer
import tandem.android.platform.AndroidKeystoreSigner
import tandem.android.platform.FusedLocation
import tandem.android.sync.SyncWorker
import tandem.shell.AppFlow

/** The process-wide phone and server link. */
class TandemApplication : Application() {
    /** The fused provider, subscribed while a visit screen is open. */
    val location by lazy { FusedLocation(this) }

    /** The phone (opening it may generate keys or repair audio after a crash: first use is
     *  on a background thread, see [AppViewModel]). */
    val phone: TandemPhone by lazy {
        TandemPhone.open(
            PhoneConfig(
                dir = filesDir.resolve("tandem").apply { mkdirs() }.path,
                keystore = AndroidKeyStoreSealer(),
                clock = AndroidClock(contentResolver),
                location = location,
                signer = AndroidKeystoreSigner(),
            ),
        )
    }

    /** The agency's server (set at build time per deployment). */
    val server: Server by lazy { Server(BuildConfigUrl.SERVER_URL) }

    /** The app's screens and flows (plain Kotlin, `shared`). */
    val flow: AppFlow by lazy { AppFlow(phone, server, ZoneId.systemDefault()) }

    override fun onCreate() {
        super.onCreate()
        SyncWorker.schedulePeriodic(this)
    }
}

/** Where the server is; a deployment changes this one line (or a build flavour). */
object BuildConfigUrl {
    const val SERVER_URL = "https://tandem.example"
}
