using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using static ScaleGrow.Checkpoints.CheckpointText;
using static TorchSharp.torch;

namespace ScaleGrow.Checkpoints;

/// <summary>
/// Weight sharing across names (ScaleNet's layer mapping reuses one tensor in several layers): on save, names whose
/// tensors share storage are reduced to one stored tensor under the first name in ordinal order plus an
/// alias → canonical map; on load the map is checked and each alias is bound to the canonical tensor object.
/// </summary>
internal static class TensorAliases
{
    /// <summary>
    /// Splits <paramref name="tensors"/> into the tensors to store and the aliases of stored ones. Two names share
    /// when they hold the same Tensor object, or tensors with the same data address, dtype, device, shape and strides
    /// (two TorchSharp handles onto one parameter). Overlapping views that differ in shape are stored separately.
    /// </summary>
    public static (SortedDictionary<string, Tensor> Stored, SortedDictionary<string, string> Aliases) Split(
        IReadOnlyDictionary<string, Tensor> tensors)
    {
        var stored = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        var aliases = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var byObject = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        var byStorage = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
        {
            var tensor = tensors[name];
            if (tensor is null)
            {
                stored.Add(name, tensor!); // the writer reports the null with its name
                continue;
            }
            if (byObject.TryGetValue(tensor, out var canonical))
            {
                aliases.Add(name, canonical);
                continue;
            }
            var key = StorageKey(tensor);
            if (key is not null && byStorage.TryGetValue(key, out canonical))
            {
                aliases.Add(name, canonical);
                byObject.Add(tensor, canonical);
                continue;
            }
            stored.Add(name, tensor);
            byObject.Add(tensor, name);
            if (key is not null) byStorage.Add(key, name);
        }
        return (stored, aliases);
    }

    // Empty tensors have no meaningful address (often null), so they only alias when they are the same object.
    internal static string? StorageKey(Tensor t) =>
        t.NumberOfElements == 0
            ? null
            : $"{TensorMemory.DataPointer(t)}|{t.dtype}|{t.device_type}:{t.device_index}|" +
              $"{string.Join(",", t.shape)}|{string.Join(",", t.stride())}";

    public static string ToJson(IReadOnlyDictionary<string, string> aliases)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions
        { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (var (alias, canonical) in aliases.OrderBy(a => a.Key, StringComparer.Ordinal))
                json.WriteString(alias, canonical);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Parses the alias map of a file and adds each alias to <paramref name="tensors"/>, bound to the same Tensor
    /// object as its canonical name. An alias must not also be stored, and must point at a stored tensor (no chains).
    /// </summary>
    public static void Resolve(
        string json, Dictionary<string, Tensor> tensors, string source, SafeTensorsReadOptions options)
    {
        var stored = new HashSet<string>(tensors.Keys, StringComparer.Ordinal);
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json), new JsonReaderOptions { MaxDepth = 2 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw Error(source, $"{CheckpointMetadata.AliasesKey} is not a JSON object of names");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string alias = reader.GetString()!;
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                    throw Error(source, $"alias {Quote(alias)} in {CheckpointMetadata.AliasesKey} is not a string");
                string canonical = reader.GetString()!;
                SafeTensorsHeader.CheckName(alias, "alias", source, options);
                if (stored.Contains(alias))
                    throw Error(source, $"alias {Quote(alias)} is also stored as a tensor");
                if (tensors.ContainsKey(alias))
                    throw Error(source, $"alias {Quote(alias)} appears twice in {CheckpointMetadata.AliasesKey}");
                if (!stored.Contains(canonical))
                    throw Error(source, $"alias {Quote(alias)} points to {Quote(canonical)}, which is not a tensor " +
                                        "in the file");
                tensors.Add(alias, tensors[canonical]);
            }
            while (reader.Read()) { }
        }
        catch (JsonException e)
        {
            throw Error(source, $"{CheckpointMetadata.AliasesKey} is not valid JSON ({e.Message})", e);
        }
        catch (InvalidOperationException e)
        {
            throw Error(source, $"{CheckpointMetadata.AliasesKey} holds an invalid string ({e.Message})", e);
        }
    }
}
