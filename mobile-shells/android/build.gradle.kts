// Plugin versions, pinned; bump them together (AGP, Kotlin and the Compose compiler plugin
// must agree). Library versions are pinned in each module's build file.
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.1.0" apply false
    id("org.jetbrains.kotlin.jvm") version "2.1.0" apply false
    id("org.jetbrains.kotlin.plugin.compose") version "2.1.0" apply false
}
