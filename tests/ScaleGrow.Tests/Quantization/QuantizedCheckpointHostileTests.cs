using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ScaleGrow.Checkpoints;
using ScaleGrow.Quantization;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Quantization;

/// <summary>
/// Quantized checkpoints arrive as uploads: every inconsistency between the settings JSON, the packed tensors and the
/// architecture spec must be one <see cref="CheckpointFormatException"/> that names the file and what is wrong —
/// never a crash, never another exception type, never a model built from garbage.
/// </summary>
public partial class QuantizedCheckpointHostileTests(ITestOutputHelper output)
{
    private const string Source = "upload.safetensors";
    private const string Key = CheckpointMetadata.QuantizationKey;

    /// <summary>A valid file with every optional tensor: 3-bit asymmetric grids in groups of 8 that follow the
    /// re-ordered quantization order, so layers carry zero points and permutations.</summary>
    private static readonly Lazy<(byte[] File, string Conv, string Linear, long Columns)> Base = new(() =>
    {
        var file = QuantizationFixtures.Quantized(QuantizedCheckpointTests.Options(QuantizationMethods.GptqReorder,
            bits: 3, groupSize: 8, symmetric: false)).Checkpoint;
        var info = QuantizedCheckpoint.ParseInfo(
            SafeTensorsReader.Read(file, "base").Metadata[Key], "base");
        long Columns(QuantizedLayerInfo l) => l.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var conv = info.Layers.First(l => l.Value.Kind == LayerKind.Conv2d && l.Value.Permuted
                                          && Columns(l.Value) > 9);
        return (file, conv.Key, info.Layers.Single(l => l.Value.Kind == LayerKind.Linear).Key, Columns(conv.Value));
    });

    private static string Conv => Base.Value.Conv;
    private static string Linear => Base.Value.Linear;

    private static byte[] Rewrite(Action<Dictionary<string, Tensor>, Dictionary<string, string>> edit)
    {
        var file = SafeTensorsReader.Read(Base.Value.File, "base");
        var tensors = new Dictionary<string, Tensor>(file.Tensors);
        var metadata = new Dictionary<string, string>(file.Metadata);
        edit(tensors, metadata);
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, tensors, metadata);
        return ms.ToArray();
    }

    private static byte[] EditInfo(Action<JsonObject> edit) => Rewrite((_, metadata) =>
    {
        var info = JsonNode.Parse(metadata[Key])!.AsObject();
        edit(info);
        metadata[Key] = info.ToJsonString();
    });

    private static JsonObject LayerInfo(JsonObject info, string layer) => info["layers"]![layer]!.AsObject();

    private static void Replace(Dictionary<string, Tensor> tensors, string name, Func<Tensor, Tensor> change) =>
        tensors[name] = change(tensors[name]);

    public static TheoryData<string, string> Cases => new()
    {
        { "codes one byte short", "must be U8 [" },
        { "codes one byte long", "must be U8 [" },
        { "codes as I8", "must be U8 [" },
        { "codes as a matrix", "must be U8 [" },
        { "dirty padding bits", "padding bits of the last byte are not zero" },
        { "scales of the wrong shape", "must be F32 [" },
        { "scales as F16 in an F32 file", "must be F32 [" },
        { "a zero scale", "not positive and finite" },
        { "a NaN scale", "not positive and finite" },
        { "a negative scale", "not positive and finite" },
        { "zero points missing", ".weight.zeros' is missing" },
        { "zero points on a symmetric layer", "is symmetric but has zero points" },
        { "layer bits 9", "bits must be in 2..8, got 9" },
        { "layer bits 1", "bits must be in 2..8, got 1" },
        { "global bits 0", "bits must be in 2..8, got 0" },
        { "codes of a listed layer missing", ".weight.codes' is missing" },
        { "a layer's packed tensors without its listing", "does not list as quantized" },
        { "a layer missing altogether", "required by the architecture spec is missing" },
        { "a listed layer the spec lacks", "is not a Conv2d or Linear module of the architecture spec" },
        { "a listed norm layer", "is not a Conv2d or Linear module of the architecture spec" },
        { "kind mismatch", "is a Conv2d, the file says Linear" },
        { "shape mismatch", "does not match the spec's weight" },
        { "conv groups mismatch", "convGroups 2, the spec's layer has 1" },
        { "both float and quantized", "is stored both quantized and as float" },
        { "permutation with a repeat", "is not a permutation of 0.." },
        { "permutation out of range", "is not a permutation of 0.." },
        { "negative permutation entry", "is not a permutation of 0.." },
        { "permutation as I64", "must be Int32 [" },
        { "permutation of the wrong shape", "must be Int32 [" },
        { "permutation on an unpermuted layer", "is not permuted but has" },
        { "permuted without groups", "permuted groups need a groupSize > 0" },
        { "permutation missing", ".weight.perm' is missing" },
        { "settings not JSON", "is not valid JSON" },
        { "settings missing", "__metadata__ has no 'scalegrow.quantization'" },
        { "unknown settings member", "is not valid quantization settings" },
        { "layers missing", "is not valid quantization settings" },
        { "null method", "is not valid quantization settings" },
        { "unknown method", "method 'awq' is not one of" },
        { "unknown scale format", "is not valid quantization settings" },
        { "group size 1", "groupSize must be 0 (per output channel) or in 2..65536, got 1" },
        { "negative calibration samples", "calibrationSamples must be non-negative" },
        { "no layers", "lists no quantized layers" },
        { "a layer listed twice", "is not valid quantization settings" },
        { "shape of huge numbers", "does not match the spec's weight" },
        { "spec not a spec", "not a valid architecture spec" },
        { "wrong format version", "format version '2' is not supported" },
    };

    private static byte[] Mutant(string name)
    {
        string conv = Conv, linear = Linear;
        long columns = Base.Value.Columns;
        return name switch
        {
            "codes one byte short" => Rewrite((t, _) => Replace(t, conv + ".weight.codes", c => c[..^1])),
            "codes one byte long" => Rewrite((t, _) => Replace(t, conv + ".weight.codes",
                c => torch.cat([c, torch.zeros(1, ScalarType.Byte)]))),
            "codes as I8" => Rewrite((t, _) => Replace(t, conv + ".weight.codes", c => c.to(ScalarType.Int8))),
            "codes as a matrix" => Rewrite((t, _) => Replace(t, conv + ".weight.codes", c => c.reshape(3, -1))),
            "dirty padding bits" => Rewrite((t, _) => Replace(t, linear + ".weight.zeros", z =>
            {
                var copy = z.clone();
                copy[^1] = copy[^1].bitwise_or(0x80);
                return copy;
            })),
            "scales of the wrong shape" => Rewrite((t, _) => Replace(t, conv + ".weight.scales",
                s => torch.cat([s, s[.., ..1]], 1))),
            "scales as F16 in an F32 file" => Rewrite((t, _) => Replace(t, conv + ".weight.scales",
                s => s.to(ScalarType.Float16))),
            "a zero scale" => Rewrite((t, _) => Replace(t, conv + ".weight.scales", s => Set(s, 0f))),
            "a NaN scale" => Rewrite((t, _) => Replace(t, conv + ".weight.scales", s => Set(s, float.NaN))),
            "a negative scale" => Rewrite((t, _) => Replace(t, conv + ".weight.scales", s => Set(s, -0.5f))),
            "zero points missing" => Rewrite((t, _) => t.Remove(conv + ".weight.zeros")),
            "zero points on a symmetric layer" => EditInfo(i => LayerInfo(i, conv)["symmetric"] = true),
            "layer bits 9" => EditInfo(i => LayerInfo(i, conv)["bits"] = 9),
            "layer bits 1" => EditInfo(i => LayerInfo(i, conv)["bits"] = 1),
            "global bits 0" => EditInfo(i => i["bits"] = 0),
            "codes of a listed layer missing" => Rewrite((t, _) => t.Remove(conv + ".weight.codes")),
            "a layer's packed tensors without its listing" => EditInfo(i => i["layers"]!.AsObject().Remove(conv)),
            "a layer missing altogether" => Rewrite((t, m) =>
            {
                foreach (var n in t.Keys.Where(n => n.StartsWith(conv + ".weight.", StringComparison.Ordinal)).ToList())
                    t.Remove(n);
                var info = JsonNode.Parse(m[Key])!.AsObject();
                info["layers"]!.AsObject().Remove(conv);
                m[Key] = info.ToJsonString();
            }),
            "a listed layer the spec lacks" => EditInfo(i =>
                i["layers"]!["block7.L99.conv.fused"] = LayerInfo(i, conv).DeepClone()),
            "a listed norm layer" => EditInfo(i => i["layers"]!["head.norm"] = LayerInfo(i, linear).DeepClone()),
            "kind mismatch" => EditInfo(i => LayerInfo(i, conv)["kind"] = "Linear"),
            "shape mismatch" => EditInfo(i => LayerInfo(i, conv)["shape"]![0] = 9),
            "conv groups mismatch" => EditInfo(i => LayerInfo(i, conv)["convGroups"] = 2),
            "both float and quantized" => Rewrite((t, _) => t[conv + ".weight"] = torch.zeros(1)),
            "permutation with a repeat" => Rewrite((t, _) => Replace(t, conv + ".weight.perm", p =>
            {
                var copy = p.clone();
                copy[0, 1] = copy[0, 0];
                return copy;
            })),
            "permutation out of range" => Rewrite((t, _) => Replace(t, conv + ".weight.perm", p =>
            {
                var copy = p.clone();
                copy[0, 0] = torch.tensor((int)columns);
                return copy;
            })),
            "negative permutation entry" => Rewrite((t, _) => Replace(t, conv + ".weight.perm", p =>
            {
                var copy = p.clone();
                copy[0, 3] = torch.tensor(-1);
                return copy;
            })),
            "permutation as I64" => Rewrite((t, _) => Replace(t, conv + ".weight.perm", p => p.to(ScalarType.Int64))),
            "permutation of the wrong shape" => Rewrite((t, _) => Replace(t, conv + ".weight.perm", p => p.t())),
            "permutation on an unpermuted layer" => EditInfo(i => LayerInfo(i, conv)["permuted"] = false),
            "permuted without groups" => EditInfo(i => LayerInfo(i, conv)["groupSize"] = 0),
            "permutation missing" => Rewrite((t, _) => t.Remove(conv + ".weight.perm")),
            "settings not JSON" => Rewrite((_, m) => m[Key] = "{\"bits\":"),
            "settings missing" => Rewrite((_, m) => m.Remove(Key)),
            "unknown settings member" => EditInfo(i => i["evil"] = 1),
            "layers missing" => EditInfo(i => i.Remove("layers")),
            "null method" => EditInfo(i => i["method"] = null),
            "unknown method" => EditInfo(i => i["method"] = "awq"),
            "unknown scale format" => EditInfo(i => i["scaleFormat"] = "F8"),
            "group size 1" => EditInfo(i => LayerInfo(i, conv)["groupSize"] = 1),
            "negative calibration samples" => EditInfo(i => i["calibrationSamples"] = -1),
            "no layers" => Rewrite((t, m) =>
            {
                foreach (var n in t.Keys.Where(n => n.Contains(".weight.", StringComparison.Ordinal)).ToList())
                    t.Remove(n);
                var info = JsonNode.Parse(m[Key])!.AsObject();
                info["layers"] = new JsonObject();
                m[Key] = info.ToJsonString();
            }),
            "a layer listed twice" => Rewrite((_, m) =>
            {
                var entry = $"\"{linear}\":" + JsonNode.Parse(m[Key])!["layers"]![linear]!.ToJsonString();
                m[Key] = m[Key].Replace("\"layers\":{", "\"layers\":{" + entry + ",", StringComparison.Ordinal);
            }),
            "shape of huge numbers" => EditInfo(i => LayerInfo(i, conv)["shape"] =
                new JsonArray(long.MaxValue, long.MaxValue, 3, 3)),
            "spec not a spec" => Rewrite((_, m) => m[CheckpointMetadata.SpecKey] = "{\"kind\":\"cnn\"}"),
            "wrong format version" => Rewrite((_, m) => m[CheckpointMetadata.FormatVersionKey] = "2"),
            _ => throw new ArgumentException(name),
        };
    }

    private static Tensor Set(Tensor scales, float value)
    {
        var copy = scales.clone();
        copy[0, 0] = torch.tensor(value);
        return copy;
    }

    [Fact]
    public void TheUnmodifiedBaseFileLoads()
    {
        var (model, _) = ModelIO.LoadModel(Base.Value.File, Source);
        model.Module.Dispose();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void HostileQuantizedFilesAreRefusedWithOneClearError(string mutation, string expected)
    {
        using var scope = torch.NewDisposeScope();
        var file = Mutant(mutation);
        var e = Assert.Throws<CheckpointFormatException>(() => ModelIO.LoadModel(file, Source));
        Assert.StartsWith(Source + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(expected, e.Message);
    }

    private static readonly string[] NumberReplacements =
        ["-1", "0", "1", "2", "3", "8", "9", "255", "65537", "1e3", "99999999999999999999", "9223372036854775807",
         "2.5", "null", "true", "\"4\"", "[]", "{}"];

    /// <summary>Seeded mutations of the settings JSON and of the packed tensors: each mutant loads (then it is a
    /// consistent model) or is refused with a <see cref="CheckpointFormatException"/>.</summary>
    [Fact]
    public void EveryMutantOfAQuantizedFileEitherLoadsOrIsRefusedWithACheckpointFormatException()
    {
        const int cases = 400;
        var failures = new List<string>();
        var messages = new HashSet<string>();
        int loaded = 0, refused = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            var random = new Random(7919 * i + 1);
            using var scope = torch.NewDisposeScope();
            byte[] mutant = MutateRandomly(random, out var how);
            try
            {
                var (model, _) = ModelIO.LoadModel(mutant, Source);
                using var module = model.Module;
                foreach (var (name, t) in module.state_dict())
                    if (t.is_floating_point() && !t.isfinite().all().item<bool>())
                        failures.Add($"#{i} ({how}): loaded with non-finite '{name}'");
                loaded++;
            }
            catch (CheckpointFormatException e)
            {
                refused++;
                if (!e.Message.StartsWith(Source + ": ", StringComparison.Ordinal) || e.Message.Contains('\n'))
                    failures.Add($"#{i} ({how}): badly formed message: {e.Message}");
                messages.Add(Digits().Replace(Quoted().Replace(e.Message, "'…'"), "N"));
            }
            catch (Exception e)
            {
                failures.Add($"#{i} ({how}): {e.GetType().Name}: {e.Message}");
            }
        }
        output.WriteLine($"{cases} mutants: {loaded} loaded, {refused} refused, {messages.Count} distinct refusals, " +
                         $"{clock.ElapsedMilliseconds} ms");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        Assert.True(loaded > cases / 20, $"only {loaded} mutants loaded");
        Assert.True(messages.Count >= 15, $"only {messages.Count} distinct refusals");
    }

    private static byte[] MutateRandomly(Random random, out string how)
    {
        switch (random.Next(5))
        {
            case 0:
            {
                // A number or boolean of the settings JSON replaced.
                var json = SafeTensorsReader.Read(Base.Value.File, "base").Metadata[Key];
                var matches = Scalars().Matches(json);
                var m = matches[random.Next(matches.Count)];
                var replacement = NumberReplacements[random.Next(NumberReplacements.Length)];
                how = $"settings {m.Value} -> {replacement}";
                var edited = json[..m.Index] + replacement + json[(m.Index + m.Length)..];
                return Rewrite((_, meta) => meta[Key] = edited);
            }
            case 1:
            {
                // Random bytes of one packed tensor flipped.
                int pick = random.Next(1000);
                string label = "";
                var file = Rewrite((t, _) =>
                {
                    var packed = t.Keys.Where(n => n.Contains(".weight.", StringComparison.Ordinal)).Order().ToList();
                    var name = packed[pick % packed.Count];
                    var raw = t[name].contiguous().bytes.ToArray();
                    int at = random.Next(raw.Length);
                    raw[at] ^= (byte)(1 << random.Next(8));
                    var copy = t[name].clone();
                    copy.bytes = raw;
                    t[name] = copy;
                    label = $"bit flip in {name}[{at}]";
                });
                how = label;
                return file;
            }
            case 2:
            {
                // One tensor removed.
                int pick = random.Next(1000);
                string label = "";
                var file = Rewrite((t, _) =>
                {
                    var names = t.Keys.Order().ToList();
                    label = $"removed {names[pick % names.Count]}";
                    t.Remove(names[pick % names.Count]);
                });
                how = label;
                return file;
            }
            case 3:
            {
                // One packed tensor truncated, extended or retyped.
                int pick = random.Next(1000), change = random.Next(4);
                string label = "";
                var file = Rewrite((t, _) =>
                {
                    var packed = t.Keys.Where(n => n.Contains(".weight.", StringComparison.Ordinal)).Order().ToList();
                    var name = packed[pick % packed.Count];
                    var flat = t[name].flatten();
                    t[name] = change switch
                    {
                        0 => flat[..Math.Max(0, (int)flat.shape[0] - 1)],
                        1 => torch.cat([flat, flat[..1]]),
                        2 => t[name].to(ScalarType.Int16),
                        _ => flat,
                    };
                    label = $"reshaped {name} ({change})";
                });
                how = label;
                return file;
            }
            default:
            {
                // A layer key renamed to another layer's name or to a non-layer.
                var json = SafeTensorsReader.Read(Base.Value.File, "base").Metadata[Key];
                var layers = JsonNode.Parse(json)!["layers"]!.AsObject().Select(kv => kv.Key).ToList();
                var from = layers[random.Next(layers.Count)];
                var to = random.Next(3) switch
                {
                    0 => layers[random.Next(layers.Count)],
                    1 => "head",
                    _ => from + ".x",
                };
                how = $"layer {from} renamed {to}";
                var edited = json.Replace($"\"{from}\":", $"\"{to}\":", StringComparison.Ordinal);
                return Rewrite((_, meta) => meta[Key] = edited);
            }
        }
    }

    [GeneratedRegex(@"-?\d+|true|false")] private static partial Regex Scalars();
    [GeneratedRegex(@"'[^']*'")] private static partial Regex Quoted();
    [GeneratedRegex(@"\d+")] private static partial Regex Digits();
}
