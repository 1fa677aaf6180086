// The one activity. FLAG_SECURE on its window keeps every screen out of screenshots, screen
// recordings and the recent-apps thumbnail (D02); dialogs and pop-ups are windows of their
// own and set it again (see ui/Secure.kt).
package tandem.android

import android.Manifest
import android.os.Bundle
import android.view.WindowManager
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import tandem.android.ui.TandemApp

class MainActivity : ComponentActivity() {
    private val model: AppViewModel by viewModels()

    private val permissions = registerForActivityResult(ActivityResultContracts.RequestMultiplePermissions()) { granted ->
        model.permissionsChanged(granted)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        super.onCreate(savedInstanceState)
        permissions.launch(
            arrayOf(
                Manifest.permission.CAMERA,
                Manifest.permission.RECORD_AUDIO,
                Manifest.permission.ACCESS_FINE_LOCATION,
                Manifest.permission.POST_NOTIFICATIONS,
            ),
        )
        setContent { TandemApp(model) }
    }

    override fun onResume() {
        super.onResume()
        (application as TandemApplication).location.start()
    }

    override fun onPause() {
        (application as TandemApplication).location.stop()
        super.onPause()
    }
}
