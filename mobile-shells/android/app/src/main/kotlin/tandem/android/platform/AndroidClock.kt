// Core's clock from Android's: wall time, time since boot counting deep sleep, and the boot
// count, so core can tell a monotonic reading of this boot from one of the last.
package tandem.android.platform

import android.content.ContentResolver
import android.os.SystemClock
import android.provider.Settings
import tandem.Clock

/** Wall and monotonic time of the phone. */
class AndroidClock(private val resolver: ContentResolver) : Clock {
    override fun wallMs(): Long = System.currentTimeMillis()

    override fun monotonicMs(): Long = SystemClock.elapsedRealtime()

    override fun bootId(): String = "android-boot-" + Settings.Global.getInt(resolver, Settings.Global.BOOT_COUNT, -1)
}
