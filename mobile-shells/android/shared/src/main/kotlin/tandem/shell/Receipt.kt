// The receipt form (C02): what the agent types and the payer signs. The form only turns
// text into typed values; core checks the cash authorisation (C01), the limit and the
// completeness (C02) when the co-signing starts.
package tandem.shell

import tandem.PaymentMethod
import tandem.PersonMet
import tandem.ReceiptInput

/** The payer's signature as strokes on the pad, in the pad's own pixels. */
data class SignatureStrokes(val strokes: List<List<Pair<Float, Float>>> = emptyList()) {
    /** Whether the payer has drawn anything a court could look at. */
    val isBlank: Boolean get() = strokes.none { it.size >= 2 }

    /** With one more stroke started at ([x], [y]). */
    fun begin(x: Float, y: Float): SignatureStrokes = copy(strokes = strokes + listOf(listOf(x to y)))

    /** With the current stroke continued to ([x], [y]). */
    fun extend(x: Float, y: Float): SignatureStrokes =
        if (strokes.isEmpty()) begin(x, y) else copy(strokes = strokes.dropLast(1) + listOf(strokes.last() + (x to y)))
}

/** The receipt screen's fields. [signaturePng] is the pad rendered by the platform. */
data class ReceiptForm(
    val payerRole: PersonMet = PersonMet.DEBTOR,
    val payerName: String = "",
    val amountText: String = "",
    val method: PaymentMethod = PaymentMethod.CASH,
    val signaturePng: ByteArray = ByteArray(0),
) {
    /** The amount the payer and both agents will see, or null while it is not an amount. */
    val amountPreview: String? get() = Format.parseYuan(amountText)?.let(Format::yuan)

    /** The input core takes, or why the form cannot be sent yet. */
    fun toInput(): Answer<ReceiptInput> {
        val fen = Format.parseYuan(amountText)
            ?: return Answer.Failed(ShellError.Invalid("\"$amountText\" is not an amount in yuan (for example 500 or 500.00)."))
        return Answer.Done(ReceiptInput(payerRole, payerName.trim(), fen, method, signaturePng))
    }

    // ByteArray compares by identity in a data class: compare the signature's bytes instead.
    override fun equals(other: Any?): Boolean = other is ReceiptForm && payerRole == other.payerRole &&
        payerName == other.payerName && amountText == other.amountText && method == other.method &&
        signaturePng.contentEquals(other.signaturePng)

    override fun hashCode(): Int =
        listOf(payerRole, payerName, amountText, method, signaturePng.contentHashCode()).hashCode()
}
