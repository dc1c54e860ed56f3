using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using ScaleGrow.Checkpoints;
using ScaleGrow.Tests.Infrastructure;
using TorchSharp;
using Xunit.Abstractions;
using static ScaleGrow.Tests.Checkpoints.SafeTensorsTestFiles;
using static TorchSharp.torch;

namespace ScaleGrow.Tests.Checkpoints;

/// <summary>
/// Seeded mutations of valid files: every mutant must either load consistently or be refused with a one-line
/// <see cref="CheckpointFormatException"/> — never another exception, never a hang.
/// </summary>
public partial class SafeTensorsFuzzTests(ITestOutputHelper output)
{
    private const int CasesPerSeed = 2000;
    private const string FuzzSource = "fuzz.safetensors";

    private static readonly ulong[] InterestingLengths =
    [
        0, 1, 2, 7, 8, 9, 255, 4096, 65536, int.MaxValue, (ulong)int.MaxValue + 1, uint.MaxValue, 1UL << 32,
        100_000_000, 100_000_001, long.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue,
    ];

    private static readonly string[] NumberReplacements =
    [
        "-1", "0", "1", "3", "8", "24", "1.5", "1e3", "-0", "99999999999999999999", "9223372036854775807",
        "9223372036854775808", "4294967296", "2305843009213693952", "00", "0x10", "NaN", "\"4\"", "null", "[]",
    ];

    private static readonly string[] DTypeReplacements =
    [
        "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "", "f32", "C64", "U16",
        "\\u0046\\u0033\\u0032",
    ];

    private static readonly string[] ShapeReplacements =
    [
        "[]", "[0]", "[1]", "[-1]", "[4294967296,4294967296]", "[0,9223372036854775807,9223372036854775807]",
        "[3.5]", "[\"2\"]", "[[1]]", "null", "{}", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1," +
        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[1e2]", "[2,2,2,2,2,2,2,2,2,2]",
    ];

    private static readonly string[] Fragments =
    [
        "{", "}", "[", "]", "\"", ",", ":", "0", "9", "-", " ", "\\", "\\u0000", "__metadata__", "\"dtype\"",
        "\uFFFF",
    ];

    [Fact]
    public async Task EveryMutantEitherLoadsConsistentlyOrIsRefusedWithACheckpointFormatException()
    {
        var seeds = SeedFiles();
        var clock = Stopwatch.StartNew();
        var run = Task.Run(() => Fuzz(seeds));
        Assert.Same(run, await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(120))));
        clock.Stop();
        var (failures, loaded, refused, distinctMessages) = await run;
        int cases = seeds.Count * CasesPerSeed;
        output.WriteLine($"{cases} mutants: {loaded} loaded, {refused} refused, {distinctMessages} distinct " +
                         $"message shapes, {clock.ElapsedMilliseconds} ms");

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        // The mutations must reach past the cheap checks: some mutants load, and refusals come from many rules.
        Assert.True(loaded > cases / 50, $"only {loaded} of {cases} mutants loaded");
        Assert.True(distinctMessages >= 25, $"only {distinctMessages} distinct refusals");
        Assert.True(clock.Elapsed.TotalSeconds < 4.0 * cases / 1000, $"took {clock.ElapsedMilliseconds} ms");
    }

    private static List<(string Name, byte[] File)> SeedFiles()
    {
        using var scope = torch.NewDisposeScope();
        var random = new Random(99);
        var shared = RandomBits(random, ScalarType.Float32, 2, 3);
        var model = new Dictionary<string, Tensor>
        {
            ["a.w"] = shared, ["b.w"] = shared,
            ["c.h"] = RandomBits(random, ScalarType.Float16, 3),
            ["d.bf"] = RandomBits(random, ScalarType.BFloat16, 2, 2),
            ["e.ids"] = RandomBits(random, ScalarType.Int64, 2),
            ["f.mask"] = RandomBits(random, ScalarType.Bool, 5),
            ["g.u8"] = RandomBits(random, ScalarType.Byte, 3),
        };
        using var modelFile = new MemoryStream();
        CheckpointCodec.SaveModel(modelFile, new ModelCheckpoint("""{"family":"vgg","stages":[1,2]}""", model)
        { Metadata = new Dictionary<string, string> { ["scalegrow.overlap"] = "{\"a\":1}" } });

        using var optimizerFile = new MemoryStream();
        CheckpointCodec.SaveOptimizer(optimizerFile, new OptimizerCheckpoint("""{"kind":"adamw","step":3}""",
            new Dictionary<string, Tensor>
            {
                ["a.w::exp_avg"] = RandomBits(random, ScalarType.Float32, 4),
                ["a.w::exp_avg_sq"] = RandomBits(random, ScalarType.Float32, 4),
            }));

        var raw = Write(new Dictionary<string, Tensor>
        {
            ["empty"] = torch.empty([0, 4]),
            ["scalar"] = RandomBits(random, ScalarType.Float64),
            ["i8"] = RandomBits(random, ScalarType.Int8, 3),
            ["i16"] = RandomBits(random, ScalarType.Int16, 3),
            ["i32"] = RandomBits(random, ScalarType.Int32, 1),
        }, new Dictionary<string, string> { ["k"] = "v" });
        return [("model", modelFile.ToArray()), ("optimizer", optimizerFile.ToArray()), ("raw", raw)];
    }

    private static (List<string> Failures, int Loaded, int Refused, int DistinctMessages) Fuzz(
        List<(string Name, byte[] File)> seeds)
    {
        var failures = new List<string>();
        var messages = new HashSet<string>();
        int loaded = 0, refused = 0;
        for (int s = 0; s < seeds.Count; s++)
        {
            var (seedName, seedFile) = seeds[s];
            for (int i = 0; i < CasesPerSeed; i++)
            {
                var random = new Random(s * 1_000_003 + i);
                var mutant = Mutate(seedFile, random, out var how);
                var label = $"{seedName} #{i} ({how})";
                using var scope = torch.NewDisposeScope();
                try
                {
                    var file = (i % 3) switch
                    {
                        0 => SafeTensorsReader.Read(mutant, FuzzSource),
                        1 => SafeTensorsReader.Read(new MemoryStream(mutant), FuzzSource),
                        _ => SafeTensorsReader.Read(new NonSeekableStream(mutant), FuzzSource),
                    };
                    CheckConsistent(file.Tensors, mutant, label, failures);
                    if (seedName != "raw")
                    {
                        var tensors = seedName == "model"
                            ? CheckpointCodec.LoadModel(new MemoryStream(mutant), FuzzSource).Tensors
                            : CheckpointCodec.LoadOptimizer(new MemoryStream(mutant), FuzzSource).Moments;
                        CheckConsistent(tensors, mutant, label, failures);
                    }
                    loaded++;
                }
                catch (CheckpointFormatException e)
                {
                    refused++;
                    if (!e.Message.StartsWith(FuzzSource + ": ", StringComparison.Ordinal) || e.Message.Contains('\n'))
                        failures.Add($"{label}: badly formed message: {e.Message}");
                    messages.Add(Digits().Replace(Quoted().Replace(e.Message, "'…'"), "N"));
                }
                catch (Exception e)
                {
                    failures.Add($"{label}: {e.GetType().Name}: {e.Message}");
                }
            }
        }
        return (failures, loaded, refused, messages.Count);
    }

    /// <summary>A loaded file's distinct tensors exactly fill the data section its length field delimits.</summary>
    private static void CheckConsistent(
        IReadOnlyDictionary<string, Tensor> tensors, byte[] file, string label, List<string> failures)
    {
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        long dataBytes = 0;
        foreach (var t in tensors.Values.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>())
        {
            if (t.device_type != DeviceType.CPU || !t.is_contiguous())
                failures.Add($"{label}: a tensor is not a contiguous CPU tensor");
            if (t.NumberOfElements != t.shape.Aggregate(1L, (a, b) => a * b))
                failures.Add($"{label}: element count disagrees with shape");
            dataBytes += t.NumberOfElements * t.ElementSize;
        }
        if (8 + headerLength + dataBytes != file.Length)
            failures.Add($"{label}: tensors hold {dataBytes} bytes, the file's data section is " +
                         $"{file.Length - 8 - headerLength}");
    }

    private static byte[] Mutate(byte[] seed, Random random, out string how)
    {
        var file = (byte[])seed.Clone();
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        switch (random.Next(10))
        {
            case 0:
            {
                int flips = random.Next(1, 9);
                for (int k = 0; k < flips; k++) file[random.Next(file.Length)] ^= (byte)(1 << random.Next(8));
                how = $"{flips} bit flips";
                return file;
            }
            case 1:
            {
                int at = 8 + random.Next(headerLength);
                file[at] ^= (byte)(1 << random.Next(8));
                how = $"header bit flip at {at}";
                return file;
            }
            case 2:
            {
                int length = random.Next(file.Length);
                how = $"truncated to {length}";
                return file[..length];
            }
            case 3:
            {
                var extra = new byte[random.Next(1, 64)];
                random.NextBytes(extra);
                how = $"extended by {extra.Length}";
                return [.. file, .. extra];
            }
            case 4:
            {
                ulong length = random.Next(3) == 0
                    ? (ulong)(headerLength + random.Next(-16, 17))
                    : InterestingLengths[random.Next(InterestingLengths.Length)];
                BinaryPrimitives.WriteUInt64LittleEndian(file, length);
                how = $"length field {length}";
                return file;
            }
            default:
            {
                var header = Encoding.UTF8.GetString(file, 8, headerLength);
                var data = file[(8 + headerLength)..];
                var edited = EditHeader(header, random, out how);
                if (random.Next(4) == 0) edited = EditHeader(edited, random, out var second);
                var bytes = Encoding.UTF8.GetBytes(edited);
                // Usually keep the length field honest, so the edit reaches the JSON checks.
                return Raw(bytes, data, random.Next(8) == 0 ? (ulong)headerLength : null);
            }
        }
    }

    private static string EditHeader(string header, Random random, out string how)
    {
        switch (random.Next(9))
        {
            case 0:
                return ReplaceOne(header, Numbers(), random, _ => Pick(NumberReplacements, random), "number", out how);
            case 1:
                return ReplaceOne(header, Offsets(), random, m => $"\"data_offsets\":[{m.Groups[2]},{m.Groups[1]}]",
                    "swapped offsets", out how);
            case 2:
                return ReplaceOne(header, DTypes(), random, _ => $"\"dtype\":\"{Pick(DTypeReplacements, random)}\"",
                    "dtype", out how);
            case 3:
                return ReplaceOne(header, Shapes(), random, _ => $"\"shape\":{Pick(ShapeReplacements, random)}",
                    "shape", out how);
            case 4:
            {
                // Duplicate a whole entry: a duplicate key, and an overlap.
                var entries = Entries().Matches(header);
                if (entries.Count == 0) break;
                var entry = entries[random.Next(entries.Count)].Value;
                how = "duplicated entry";
                return "{" + entry + "," + header[1..];
            }
            case 5:
            {
                var names = Names().Matches(header).Select(m => m.Groups[1].Value).Distinct().ToList();
                if (names.Count < 2) break;
                var from = names[random.Next(names.Count)];
                var to = random.Next(3) switch { 0 => "", 1 => names[random.Next(names.Count)], _ => "__metadata__" };
                how = $"renamed {from} to {to}";
                int at = header.IndexOf(from, StringComparison.Ordinal);
                return header[..at] + to + header[(at + from.Length)..];
            }
            case 6:
            {
                int at = random.Next(header.Length);
                how = $"deleted char {at}";
                return header.Remove(at, 1);
            }
            case 7:
            {
                int at = random.Next(header.Length + 1);
                var fragment = Pick(Fragments, random);
                how = $"inserted {fragment} at {at}";
                return header.Insert(at, fragment);
            }
            case 8:
            {
                // Metadata values that are not strings, and alias maps gone wrong.
                var value = Pick(["1", "{}", "[\"x\"]", "null", "\"{\\\"zz\\\":\\\"a.w\\\"}\"",
                    "\"{\\\"b.w\\\":\\\"nope\\\"}\"", "\"{\\\"a.w\\\":\\\"a.w\\\"}\"", "\"2\"", "\"{\""], random);
                return ReplaceOne(header, MetadataValues(), random, m => $"\"{m.Groups[1]}\":{value}",
                    "metadata value", out how);
            }
        }
        how = "unchanged";
        return header;
    }

    private static string ReplaceOne(string text, Regex pattern, Random random, Func<Match, string> replacement,
        string what, out string how)
    {
        var matches = pattern.Matches(text);
        if (matches.Count == 0)
        {
            how = $"no {what} to edit";
            return text;
        }
        var m = matches[random.Next(matches.Count)];
        var replaced = replacement(m);
        how = $"{what} {m.Value} -> {replaced}";
        return text[..m.Index] + replaced + text[(m.Index + m.Length)..];
    }

    private static T Pick<T>(IReadOnlyList<T> items, Random random) => items[random.Next(items.Count)];

    [GeneratedRegex(@"-?\d+")] private static partial Regex Numbers();
    [GeneratedRegex(@"""data_offsets"":\[(\d+),(\d+)\]")] private static partial Regex Offsets();
    [GeneratedRegex(@"""dtype"":""[^""]*""")] private static partial Regex DTypes();
    [GeneratedRegex(@"""shape"":\[[^\]]*\]")] private static partial Regex Shapes();
    [GeneratedRegex(@"""[^""]+"":\{""dtype""[^{}]*\}")] private static partial Regex Entries();
    [GeneratedRegex(@"""([^""\\]+)"":\{""dtype""")] private static partial Regex Names();
    [GeneratedRegex(@"""(scalegrow\.[a-z-]+|k)"":""(?:[^""\\]|\\.)*""")] private static partial Regex MetadataValues();
    [GeneratedRegex(@"'[^']*'")] private static partial Regex Quoted();
    [GeneratedRegex(@"\d+")] private static partial Regex Digits();
}
