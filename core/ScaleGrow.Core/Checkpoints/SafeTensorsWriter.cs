using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ScaleGrow.Checkpoints;

/// <summary>
/// Writes named tensors and string metadata in the safetensors layout that every standard reader accepts: compact JSON
/// with entries sorted by name, padded with spaces to a multiple of 8 bytes, then the data, contiguous and
/// little-endian. The data is ordered by element size (largest first), then by name, as the reference writer does:
/// with an 8-aligned data section every tensor then starts at a multiple of its element size, which zero-copy readers
/// (memory-mapped PyTorch, MLX, accelerators) need. Both orders are fixed, so the same input gives the same bytes.
/// </summary>
public static class SafeTensorsWriter
{
    private const byte Space = (byte)' ';

    /// <summary>
    /// Writes <paramref name="tensors"/> (any device, layout or supported dtype; each is copied to contiguous CPU
    /// memory only where it is not already) and <paramref name="metadata"/> to <paramref name="destination"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A name is empty, too long or <c>__metadata__</c>, or a dtype is not one
    /// of BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64.</exception>
    public static void Write(
        Stream destination, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(tensors);
        using var scope = torch.NewDisposeScope();
        var limits = SafeTensorsReadOptions.Default;
        var entries = new List<(string Name, string DType, Tensor Data, long Begin, long End)>(tensors.Count);
        foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
        {
            // Never write what our own reader would refuse.
            if (SafeTensorsHeader.NameProblem(name, limits.MaxNameLength) is { } problem)
                throw new ArgumentException($"tensor name '{name}' {problem}", nameof(tensors));
            if (name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            var tensor = tensors[name] ?? throw new ArgumentException($"tensor '{name}' is null", nameof(tensors));
            if (!SafeTensorsDTypes.TryGetName(tensor.dtype, out var dtype))
                throw new ArgumentException($"tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot " +
                                            $"hold here (expected one of {SafeTensorsDTypes.Names})", nameof(tensors));
            if (tensor.dim() > SafeTensorsHeader.MaxRank)
                throw new ArgumentException($"tensor '{name}' has {tensor.dim()} dimensions, more than " +
                                            $"{SafeTensorsHeader.MaxRank}", nameof(tensors));
            entries.Add((name, dtype, tensor.detach().cpu().contiguous(), 0, 0));
        }
        var dataOrder = Enumerable.Range(0, entries.Count)
            .OrderByDescending(i => entries[i].Data.ElementSize)
            .ThenBy(i => entries[i].Name, StringComparer.Ordinal)
            .ToList();
        long offset = 0;
        foreach (int i in dataOrder)
        {
            long end = checked(offset + TensorMemory.ByteLength(entries[i].Data));
            entries[i] = entries[i] with { Begin = offset, End = end };
            offset = end;
        }

        var header = BuildHeader(entries, metadata);
        if (header.Length > limits.MaxHeaderBytes)
            throw new ArgumentException($"header would be {header.Length} bytes, more than readers accept " +
                                        $"({limits.MaxHeaderBytes})", nameof(metadata));
        Span<byte> lengthField = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthField, (ulong)header.Length);
        destination.Write(lengthField);
        destination.Write(header);
        foreach (int i in dataOrder)
            TensorMemory.WriteTo(entries[i].Data, destination);
    }

    private static byte[] BuildHeader(
        List<(string Name, string DType, Tensor Data, long Begin, long End)> entries,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps names like "a+b" readable in the header; the output is plain, valid JSON either way.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions
        { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (var key in metadata.Keys.Order(StringComparer.Ordinal))
                    json.WriteString(key, metadata[key] ?? throw new ArgumentException(
                        $"metadata value of '{key}' is null", nameof(metadata)));
                json.WriteEndObject();
            }
            foreach (var e in entries)
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType);
                json.WriteStartArray("shape");
                foreach (long d in e.Data.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(e.Begin);
                json.WriteNumberValue(e.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill(Space);
        return header;
    }
}
