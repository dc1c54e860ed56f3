using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace ScaleGrow;

/// <summary>
/// How a spec or options record crosses the boundary from JSON: parsed with its source-generated contract, a parse
/// failure turned into a one-line <see cref="InvalidSpecException"/> that names the source, <c>null</c> rejected, then
/// validated — so every <c>FromJson</c> fails the same way.
/// </summary>
internal static class SpecJson
{
    /// <param name="notValid">The message's words for a parse failure ("not a valid run spec").</param>
    /// <param name="isNull">The message's words for a <c>null</c> document ("run spec is null").</param>
    /// <param name="argumentErrorsAreInvalid">Also report an <see cref="ArgumentException"/> thrown while parsing as
    /// an invalid spec (the data specs do; the run spec and quantization options let it through).</param>
    public static T Parse<T>(string json, JsonTypeInfo<T> contract, string source, string notValid, string isNull,
        Action<T> validate, bool argumentErrorsAreInvalid = false) where T : class
    {
        T? value;
        try
        {
            value = JsonSerializer.Deserialize(json, contract);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException
                                      || (argumentErrorsAreInvalid && e is ArgumentException))
        {
            throw new InvalidSpecException($"{source}: {notValid}: {e.Message.ReplaceLineEndings(" ")}");
        }
        if (value is null) throw new InvalidSpecException($"{source}: {isNull}");
        validate(value);
        return value;
    }
}
