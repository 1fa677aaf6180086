// Formatting, key conversion, QR frame collection and error mapping: no server needed.
package tandem.shell

import java.security.KeyPairGenerator
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import tandem.Outcome
import tandem.RuleViolation
import tandem.TandemException
import tandem.tests.SHANGHAI
import tandem.tests.qrFrames

fun moneyIsWrittenInYuanFromFen() {
    expectEqual("¥0.00", Format.yuan(0))
    expectEqual("¥0.05", Format.yuan(5))
    expectEqual("¥500.00", Format.yuan(50_000))
    expectEqual("¥1,234,567.89", Format.yuan(123_456_789))
    expectEqual("-¥12.30", Format.yuan(-1_230))
    expectEqual("-¥92,233,720,368,547,758.08", Format.yuan(Long.MIN_VALUE))
}

fun typedAmountsBecomeFenWithoutFloatingPoint() {
    expectEqual(50_000L, Format.parseYuan("500"))
    expectEqual(50_000L, Format.parseYuan(" ¥500.00 "))
    expectEqual(123_450L, Format.parseYuan("1,234.5"))
    // 0.1 + 0.2 style errors would show here with doubles.
    expectEqual(29L, Format.parseYuan("0.29"))
    for (bad in listOf("", "-5", "5.001", "1e3", "abc", "5.", ".5", "99999999999999")) {
        expectEqual(null, Format.parseYuan(bad), "\"$bad\"")
    }
}

fun numbersAreMaskedButTheLastFourDigits() {
    expectEqual("**** **** **** 7890", Format.maskNumber("6222 0210 0012 7890"))
    expectEqual("*".repeat(13) + "1123X", Format.maskNumber("11010519491231123X"))
    // What core masked already passes unchanged.
    expectEqual("**** **** **** 7890", Format.maskNumber("**** **** **** 7890"))
    expectEqual("12", Format.maskNumber("12"))
}

fun durationsAndSizesReadNaturally() {
    expectEqual("0 s", Format.duration(-5))
    expectEqual("45 s", Format.duration(45_999))
    expectEqual("12 min 03 s", Format.duration(723_000))
    expectEqual("1 h 05 min", Format.duration(3_900_000))
    expectEqual("999 B", Format.bytes(999))
    expectEqual("3.4 KB", Format.bytes(3_400))
    expectEqual("12.0 MB", Format.bytes(12_000_000))
    expectEqual("10:05", Format.clock(1_764_468_300_000, SHANGHAI))
}

fun keystoreDerSignaturesBecomeFixedWidthRs() {
    val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
    val point = P256.spkiToPoint(pair.public.encoded)
    expect(point.size == 65 && point[0] == 4.toByte()) { "uncompressed point" }
    // Enough signatures that some r or s have a leading zero byte or a top bit set.
    repeat(300) { i ->
        val message = "message $i".toByteArray()
        val der = Signature.getInstance("SHA256withECDSA").run { initSign(pair.private); update(message); sign() }
        val raw = P256.derToRaw(der)
        expectEqual(64, raw.size, "raw size")
        val ok = Signature.getInstance("SHA256withECDSAinP1363Format").run { initVerify(pair.public); update(message); verify(raw) }
        expect(ok) { "signature $i does not verify as r||s" }
    }
}

fun malformedKeystoreOutputIsAPlatformError() {
    // Anyone sending bad input (a broken keystore provider): refused, never guessed at.
    val good = byteArrayOf(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02)
    expectEqual(64, P256.derToRaw(good).size)
    val bad = listOf(
        ByteArray(0),
        byteArrayOf(0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02), // not a sequence
        byteArrayOf(0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02), // wrong length
        byteArrayOf(0x30, 0x06, 0x02, 0x01, 0x81.toByte(), 0x02, 0x01, 0x02), // negative r
        byteArrayOf(0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02), // needless zero
        byteArrayOf(0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x05, 0x00, 0x00), // trailing bytes
        byteArrayOf(0x30, 0x26, 0x02, 0x22) + ByteArray(34) { 1 } + byteArrayOf(0x02, 0x01, 0x02), // r too wide
    )
    for (der in bad) expectThrows<TandemException.Platform> { P256.derToRaw(der) }
    expectThrows<TandemException.Platform> { P256.spkiToPoint(ByteArray(91)) }
}

fun framesCycleOnScreenAndCollectInAnyOrder() {
    val cycle = QrCycle(listOf("a", "b", "c"), periodMs = 400)
    expectEqual(listOf("a", "a", "b", "c", "a"), listOf(0L, 399L, 400L, 800L, 1200L).map(cycle::frameAt))
    val message = ByteArray(1500) { it.toByte() }
    val frames = qrFrames(message)
    val old = qrFrames(ByteArray(700) { 7 })
    val collector = FrameCollector()
    expectEqual("Point the camera at the other phone's code", collector.progress())
    expect(!collector.offer("https://example.com/not-ours")) { "a foreign QR code is ignored" }
    expect(!collector.offer(frames[0].replaceFirst("/1/3/", "/4/3/"))) { "index past the count is ignored" }
    expect(collector.offer(old[0])) { "a frame" }
    expect(collector.offer(frames[2])) { "a frame of a newer message" }
    expectEqual("Scanned 1 of 3", collector.progress())
    collector.offer(frames[0])
    collector.offer(frames[0])
    expect(collector.payload == null) { "two of three" }
    collector.offer(frames[1])
    expect(collector.payload.contentEquals(message)) { "three of three, in order" }
}

fun refusalsAreShownWithTheirRuleIdOnce() {
    val refused = ShellError.of(TandemException.Refused("V03", "the partner must be another agent of the team"))
    expectEqual(ShellError.Refused("V03", "the partner must be another agent of the team"), refused)
    expectEqual("V03 blocked: the partner must be another agent of the team", refused.display())
    expect(!refused.retryable) { "a refusal is not retried" }
    val plain = ShellError.of(TandemException.Refused("C01", "no cash authorisation on this approval"))
    expectEqual("C01 blocked: no cash authorisation on this approval", plain.display())

    expectEqual(ShellError.Offline(503, "pull: busy"), ShellError.of(TandemException.Server(503.toUShort(), "", "pull: busy")))
    expect(ShellError.of(TandemException.Network("timed out")).retryable) { "offline is retried" }
    expectEqual(ShellError.Cancelled, ShellError.of(TandemException.Cancelled()))
    expectEqual(ShellError.Fault("integrity", "chain broken"), ShellError.of(TandemException.Integrity("chain broken")))
    expectEqual(ShellError.NotEnrolled("no token"), ShellError.of(TandemException.NotEnrolled("no token")))

    val warning = RuleLine.of(RuleViolation("V04", Outcome.WARN, "visiting hours end in 15 minutes"))
    expectEqual("V04 warning: visiting hours end in 15 minutes", warning.display())
}

fun receiptFormTurnsTextIntoCoresInput() {
    val form = ReceiptForm(payerName = " 张三 ", amountText = "500.00", signaturePng = byteArrayOf(1, 2))
    expectEqual("¥500.00", form.amountPreview)
    val input = form.toInput().valueOrNull() ?: throw AssertionError("form refused")
    expectEqual(50_000L, input.amountFen)
    expectEqual("张三", input.payerName)
    val error = ReceiptForm(amountText = "five hundred").toInput().errorOrNull()
    expect(error is ShellError.Invalid) { "$error" }
    expect(SignatureStrokes().begin(1f, 1f).isBlank) { "a dot is no signature" }
    expect(!SignatureStrokes().begin(1f, 1f).extend(5f, 5f).isBlank) { "a stroke is" }
}

fun pcmSamplesAreLittleEndian() {
    expectEqual(listOf<Byte>(0x34, 0x12, 0xFF.toByte(), 0xFF.toByte(), 0x00, 0x80.toByte()),
        pcm16le(shortArrayOf(0x1234, -1, Short.MIN_VALUE, 7), 3).toList())
}

val unitTests: List<Pair<String, () -> Unit>> = listOf(
    "money_is_written_in_yuan_from_fen" to ::moneyIsWrittenInYuanFromFen,
    "typed_amounts_become_fen_without_floating_point" to ::typedAmountsBecomeFenWithoutFloatingPoint,
    "numbers_are_masked_but_the_last_four_digits" to ::numbersAreMaskedButTheLastFourDigits,
    "durations_and_sizes_read_naturally" to ::durationsAndSizesReadNaturally,
    "keystore_der_signatures_become_fixed_width_rs" to ::keystoreDerSignaturesBecomeFixedWidthRs,
    "malformed_keystore_output_is_a_platform_error" to ::malformedKeystoreOutputIsAPlatformError,
    "frames_cycle_on_screen_and_collect_in_any_order" to ::framesCycleOnScreenAndCollectInAnyOrder,
    "refusals_are_shown_with_their_rule_id_once" to ::refusalsAreShownWithTheirRuleIdOnce,
    "receipt_form_turns_text_into_cores_input" to ::receiptFormTurnsTextIntoCoresInput,
    "pcm_samples_are_little_endian" to ::pcmSamplesAreLittleEndian,
)
