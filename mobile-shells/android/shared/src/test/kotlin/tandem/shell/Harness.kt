// A tiny test runner (no JUnit on this machine's classpath): each test is a named function;
// the last line is "shared: N passed, N failed".
package tandem.shell

/** A failed expectation. */
fun expect(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

/** Expects [actual] to equal [expected]. */
fun <T> expectEqual(expected: T, actual: T, what: String = "") {
    if (expected != actual) throw AssertionError("$what: expected <$expected>, got <$actual>")
}

/** Runs [block], expecting it to throw [E]. */
inline fun <reified E : Throwable> expectThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

/** Runs each test, prints one line per test and the total; returns whether all passed. */
fun runTests(tests: List<Pair<String, () -> Unit>>): Boolean {
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            passed++
            println("PASS $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace(System.out)
        }
    }
    println("shared: $passed passed, $failed failed")
    return failed == 0 && passed > 0
}
