using System.Diagnostics;
using System.Globalization;
using ScaleGrow;
using ScaleGrow.Bench.Quantization;

// Issue 5's benchmark (thesis chapter 4, table 4-1): FP32 vs W8/W4/W3 × {rtn, gptq, gptq-reorder,
// gptq-reorder-dynamic} over calibration seeds, on model checkpoints given by name=path.
//
//   train-standins --out DIR [--data DIR] [--epochs N] [--train-limit N] [--threads N]
//   run --model NAME=PATH [--model NAME=PATH ...] [--data DIR] [--bits 8,4,3] [--methods rtn,gptq,...]
//       [--seeds 1,2,3] [--calib-samples N] [--test-limit N] [--scales-check] [--results FILE] [--standins FILE]
//       [--no-overlap] [--threads N]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length == 0 || args[0] is not ("train-standins" or "run"))
{
    Console.Error.WriteLine("usage: train-standins --out DIR [...] | run --model NAME=PATH [...] (see Program.cs)");
    return 2;
}
ScaleGrow.NativeMath.Configure(); // before any tensor: keeps CPU convolution gradients finite (see NativeMath)
var options = Arguments.Parse(args[1..]);
// The benchmark machine is shared: fewer intra-op threads than cores can cost less CPU time per result.
if (options.Single("threads") is { } threads)
    TorchSharp.torch.set_num_threads(int.Parse(threads, CultureInfo.InvariantCulture));
try
{
    if (args[0] == "train-standins")
    {
        StandIns.Train(options.Single("out") ?? throw new ArgumentException("--out is required"),
            options.Single("data"), options.Int("epochs", 2), options.Int("train-limit", 12000),
            "dotnet run -c Release --project bench/ScaleGrow.Bench.Quantization -- " + string.Join(" ", args));
        return 0;
    }
    var settings = new BenchSettings
    {
        Models = options.All("model").Select(m => m.Split('=', 2) is [var n, var p]
            ? (n, p) : throw new ArgumentException($"--model takes NAME=PATH, got '{m}'")).ToList(),
        DataDirectory = options.Single("data"),
        Bits = options.Ints("bits", [8, 4, 3]),
        Methods = options.List("methods") ?? ["rtn", "gptq", "gptq-reorder", "gptq-reorder-dynamic"],
        Seeds = options.Ints("seeds", [1, 2, 3]),
        CalibrationSamples = options.Int("calib-samples", 128),
        TestLimit = options.Single("test-limit") is { } t ? int.Parse(t, CultureInfo.InvariantCulture) : null,
        ScalesCheck = options.Flag("scales-check"),
        NoOverlap = options.Flag("no-overlap"),
        Results = options.Single("results") ?? "bench/RESULTS-quantization.md",
        StandIns = options.Single("standins"),
        Command = "dotnet run -c Release --project bench/ScaleGrow.Bench.Quantization -- " + string.Join(" ", args),
    };
    if (settings.Models.Count == 0) throw new ArgumentException("run needs at least one --model NAME=PATH");
    var clock = Stopwatch.StartNew();
    var results = QuantizationBench.Run(settings);
    Report.Write(settings, results, clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime);
    Console.Error.WriteLine($"wrote {settings.Results}");
    return 0;
}
catch (Exception e) when (e is ArgumentException or ScaleGrowException or FormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

/// <summary>A minimal <c>--name value</c> / <c>--flag</c> parser (repeatable options allowed).</summary>
internal sealed class Arguments
{
    private readonly List<(string Name, string? Value)> _items = [];

    public static Arguments Parse(string[] args)
    {
        var parsed = new Arguments();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{args[i]}'");
            string name = args[i][2..];
            bool flag = i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal);
            parsed._items.Add((name, flag ? null : args[++i]));
        }
        return parsed;
    }

    public IEnumerable<string> All(string name) => _items.Where(x => x.Name == name && x.Value is not null)
        .Select(x => x.Value!);

    public string? Single(string name) => All(name).LastOrDefault();
    public bool Flag(string name) => _items.Any(x => x.Name == name);

    public int Int(string name, int fallback) =>
        Single(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

    public List<string>? List(string name) => Single(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();

    public List<int> Ints(string name, List<int> fallback) =>
        List(name)?.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList() ?? fallback;
}
