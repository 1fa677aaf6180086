// Core's location source from the fused provider. Core asks synchronously (on the thread
// of a check-in call), so the latest fix is kept from a running subscription; the mock
// flag is the platform's, and core blocks a mocked fix (V05).
package tandem.android.platform

import android.annotation.SuppressLint
import android.content.Context
import android.location.Location
import android.os.Build
import android.os.Looper
import com.google.android.gms.location.LocationCallback
import com.google.android.gms.location.LocationRequest
import com.google.android.gms.location.LocationResult
import com.google.android.gms.location.LocationServices
import com.google.android.gms.location.Priority
import tandem.Datum
import tandem.LocationFix
import tandem.LocationSource
import tandem.Provider
import kotlin.math.roundToInt

/** The latest high-accuracy fix, while [start]ed. */
class FusedLocation(context: Context) : LocationSource {
    private val client = LocationServices.getFusedLocationProviderClient(context)
    @Volatile private var latest: Location? = null

    private val callback = object : LocationCallback() {
        override fun onLocationResult(result: LocationResult) {
            latest = result.lastLocation
        }
    }

    /** Subscribes (the caller holds ACCESS_FINE_LOCATION). */
    @SuppressLint("MissingPermission")
    fun start() {
        val request = LocationRequest.Builder(Priority.PRIORITY_HIGH_ACCURACY, 2_000L)
            .setMinUpdateIntervalMillis(1_000L)
            .build()
        client.requestLocationUpdates(request, callback, Looper.getMainLooper())
    }

    /** Unsubscribes (visit screen left). */
    fun stop() {
        client.removeLocationUpdates(callback)
    }

    override fun currentFix(): LocationFix? {
        val l = latest ?: return null
        // Coordinates become integers here, once: 1e-7 degrees, as core hashes and signs them.
        return LocationFix(
            latE7 = (l.latitude * 1e7).roundToInt(),
            lonE7 = (l.longitude * 1e7).roundToInt(),
            // GNSS through the fused provider is WGS-84 (never GCJ-02 on Google's stack).
            datum = Datum.WGS84,
            accuracyM = if (l.hasAccuracy()) l.accuracy.roundToInt().coerceAtLeast(0).toUInt() else UInt.MAX_VALUE,
            provider = Provider.FUSED,
            mock = isMock(l),
            takenAtMs = l.time,
        )
    }

    @Suppress("DEPRECATION")
    private fun isMock(l: Location): Boolean =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) l.isMock else l.isFromMockProvider
}
