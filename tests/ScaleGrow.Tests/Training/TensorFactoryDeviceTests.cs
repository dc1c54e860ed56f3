using System.Text.RegularExpressions;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Training;

/// <summary>
/// The half of the device rule the float64 audit (Runs/DeviceAuditTests) cannot see: a tensor factory without a
/// device, used in elementwise arithmetic, is silently promoted on the CPU and fails only on a GPU. So every
/// <c>torch.zeros/ones/empty/full/arange/rand*/tensor/eye/linspace/normal</c> call in core names its device, except
/// where tensors are host-side by design: data loading (batches are placed by whoever consumes them), the checkpoint
/// and ONNX file formats (always CPU), a module's own parameters in its constructor (placed with the module), and
/// lines that say why with a <c>// host:</c> comment.
/// </summary>
public partial class TensorFactoryDeviceTests
{
    private static readonly string[] HostFolders = ["Data/", "Checkpoints/", "Export/"];
    private static readonly string[] HostFiles = ["Quantization/QuantizedCheckpoint.cs"];

    [GeneratedRegex(@"torch\.(zeros|ones|empty|full|arange|rand|randn|randint|randperm|tensor|eye|linspace|normal)\(")]
    private static partial Regex Factory();

    /// <summary>Factory calls in <paramref name="source"/> that name no device: (line, text).</summary>
    internal static List<(int Line, string Text)> CallsWithoutDevice(string source)
    {
        var found = new List<(int, string)>();
        var lines = source.Split('\n');
        foreach (Match m in Factory().Matches(source))
        {
            int end = m.Index + m.Length, depth = 1;
            while (depth > 0 && end < source.Length)
            {
                if (source[end] == '(') depth++;
                else if (source[end] == ')') depth--;
                end++;
            }
            string call = source[m.Index..end];
            int line = source.AsSpan(0, m.Index).Count('\n');
            string text = lines[line];
            if (call.Contains("device", StringComparison.Ordinal)) continue;
            if (text.Contains("// host:", StringComparison.Ordinal)) continue;
            if (source.AsSpan(Math.Max(0, m.Index - 14), Math.Min(14, m.Index)).ToString().Contains("new Parameter(",
                    StringComparison.Ordinal)) continue;
            if (text.TrimStart().StartsWith("//", StringComparison.Ordinal)) continue;
            found.Add((line + 1, text.Trim()));
        }
        return found;
    }

    [Fact]
    public void EveryTensorFactoryInCoreNamesItsDeviceOrSaysWhyItIsHostSide()
    {
        string core = Path.Combine(RepositoryRoot.Find(), "core", "ScaleGrow.Core");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(core, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(core, file).Replace('\\', '/');
            if (relative.StartsWith("obj/", StringComparison.Ordinal) || relative.StartsWith("bin/", StringComparison.Ordinal))
                continue;
            if (HostFolders.Any(f => relative.StartsWith(f, StringComparison.Ordinal)) || HostFiles.Contains(relative))
                continue;
            offenders.AddRange(CallsWithoutDevice(File.ReadAllText(file)).Select(c => $"{relative}:{c.Line}: {c.Text}"));
        }
        Assert.True(offenders.Count == 0,
            "tensor factories without a device (add device: …, or a // host: comment saying who places it):\n" +
            string.Join("\n", offenders));
    }

    [Fact]
    public void TheCheckFindsAFactoryWithoutADeviceAndAcceptsThePlacedAndTheExplainedOnes()
    {
        const string source = """
            var a = torch.zeros(3, 4, dtype: w.dtype);
            var b = torch.zeros(3, 4, dtype: w.dtype, device: w.device);
            var c = torch.arange(n, dtype: ScalarType.Int64); // host: the loader's index, placed by the trainer
            weight = new Parameter(torch.ones(width));
            var d = torch.full(new long[] { 2, torch.ones(1).shape[0] }, 1.0,
                dtype: t.dtype);
            """;
        var found = CallsWithoutDevice(source);
        Assert.Equal([1, 5, 5], found.Select(f => f.Line).ToArray());
        Assert.Contains("torch.zeros(3, 4, dtype: w.dtype);", found[0].Text);
    }
}
