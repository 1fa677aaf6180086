// Tandem's Android shell: `app` (screens and platform adapters) over `shared` (plain Kotlin:
// screen state, flows and formatting, tested on the JVM by shared/test-jvm.sh).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "tandem-android"
include(":app", ":shared")
