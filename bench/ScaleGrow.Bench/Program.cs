using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScaleGrow;
using ScaleGrow.Growth;
using ScaleGrow.Models;
using ScaleGrow.Runs;
using ScaleGrow.Training;
using TorchSharp;
using static TorchSharp.torch;

// ScaleGrow benchmarks. Every measured run is a `scalegrow` command (printed with its result), so any number in
// bench/RESULTS.md can be reproduced by hand. Results go to bench/results/<mode>-<time>.md.
//   growth     [--presets a,b] [--baselines x,y] [--seed N] [--reuse true] [--budget S]
//              growth presets vs fixed baselines at equal wall time; --reuse true takes a run that already finished
//              with the same command from bench/work/<tag>/ (its report.json) instead of running it again;
//              --budget S gives the baselines S seconds instead of the growth runs' mean; --same-speed false gives them
//              the growth runs' wall time as measured, not scaled to this machine's speed now (see SpeedNowOverThen);
//              --plan true runs nothing: it takes the finished growth runs and prints the epochs the baselines would get.
//              The baselines' epochs, once probed, are kept in bench/work/baselines-s<seed>.json for those growth runs
//   ablations  [--seeds 1,2] [--train-limit N]                placement, sampling, init, optimizer (table 3-6…3-10)
//   transformer-ablations [--seeds 1,2] [--train-limit N]    heads vs head width, depth placement, optimizer state
//   overhead   [--preset quick]                               direct vs in-process engine vs Azure Storage backend
//   oracle     [--presets quick] [--seeds 1,2] [--reuse true]  each growth run against its own final architecture
//              trained from scratch for the same epochs with the same recipe ("growth costs nothing", issue 15)
//   time-to-accuracy --runs label=dir,label=dir [--title T] [--name N] [--target 0.9]
//              finished runs' validation accuracy against wall-clock seconds on one plot (bench/results/N.png) and
//              when each first reached the target; growth and oracle write one such plot per preset by themselves
//   record-command --tag T --args "grow --preset P --seed N"
//              a run made by hand into bench/work/T becomes one --reuse true takes (runs are reused only while the
//              preset's spec, or the --spec file, is what it was: bench/work/T.command keeps its fingerprint)
ScaleGrow.NativeMath.Configure(); // before any tensor: keeps CPU convolution gradients finite (see NativeMath)
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
string root = FindRoot();
string mode = args.Length > 0 ? args[0] : throw new ArgumentException("mode: growth | ablations | overhead");
var options = ParseOptions(args[1..]);
var work = Path.Combine(root, "bench", "work");
Directory.CreateDirectory(work);
var md = new StringBuilder();
var started = DateTime.UtcNow;
md.AppendLine($"## {mode} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
md.AppendLine();
md.AppendLine($"Machine: {Environment.ProcessorCount} cores ({ScaleGrow.Bench.BenchMachine.Describe()}), load average at start {ScaleGrow.Bench.BenchMachine.LoadAverage()}. " +
              $"Command: `dotnet run --project bench/ScaleGrow.Bench -c Release -- {string.Join(' ', args)}`");
md.AppendLine();
// Until the result file is written at the end, bench/work/<mode>-<time>.partial.md holds what is known so far (the
// plan and every finished run's line), so a comparison killed hours in (a session's end) still leaves its record.
var partialFile = Path.Combine(work, $"{mode}-{started:yyyyMMdd-HHmm}.partial.md");
var finishedLines = new List<string>();
void SavePartial() => File.WriteAllText(partialFile, md + "\nFinished so far:\n\n" + string.Concat(finishedLines.Select(l => $"- {l}\n")));
switch (mode)
{
    case "growth": await Growth(); break;
    case "ablations": await Ablations(); break;
    case "transformer-ablations": await TransformerAblations(); break;
    case "overhead": await Overhead(); break;
    case "oracle": await Oracle(); break;
    case "time-to-accuracy": TimeToAccuracyMode(); break;
    case "record-command": RecordCommandMode(); return; // no result file: it measures nothing
    default: throw new ArgumentException($"unknown mode {mode}");
}
var resultFile = Path.Combine(root, "bench", "results",
    (mode == "time-to-accuracy" && options.GetValueOrDefault("name") is { } named ? named
        : $"{mode}{(options.GetValueOrDefault("plan") == "true" ? "-plan" : "")}-{started:yyyyMMdd-HHmm}") + ".md");
Directory.CreateDirectory(Path.GetDirectoryName(resultFile)!);
File.WriteAllText(resultFile, md.ToString());
File.Delete(partialFile);
Console.WriteLine(md.ToString());
Console.WriteLine($"written to {resultFile}");
return;

async Task Growth()
{
    var presets = (options.GetValueOrDefault("presets") ?? "fashion-vgg,fashion-resnet,fashion-bottleneck,fashion-mbv3").Split(',');
    var baselines = (options.GetValueOrDefault("baselines") ?? "fashion-vgg11,fashion-resnet18,fashion-mbv3small").Split(',');
    string seed = options.GetValueOrDefault("seed") ?? "1";
    // --budget S, checked before any run starts: the baselines get S seconds instead of the growth runs' mean.
    double? fixedBudget = null;
    if (options.GetValueOrDefault("budget") is { } b)
        fixedBudget = double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s
            : throw new ArgumentException($"--budget must be a positive number of seconds, got '{b}'");
    // --train-limit N: every run on the same training subset (0: the full training split, as the issue's comparison
    // on full Fashion-MNIST wants); the presets are then written out as spec files so the printed commands still
    // reproduce each row.
    int? trainLimit = options.GetValueOrDefault("train-limit") is { } t ? int.Parse(t) : null;
    // --max-epochs N: the growth runs' growth phase ends at N (a shorter, reduced-scale comparison).
    int? maxEpochs = options.GetValueOrDefault("max-epochs") is { } me ? int.Parse(me) : null;
    RunSpec SpecOf(string preset)
    {
        var spec = Presets.Get(preset).Spec;
        if (trainLimit is { } limit) spec = spec with { Data = spec.Data with { TrainLimit = limit > 0 ? limit : null } };
        if (maxEpochs is { } max && spec.Kind == RunKind.Grow) spec = spec with { Growth = spec.Growth with { MaxEpochs = max } };
        return spec;
    }
    string Source(string preset)
    {
        if (trainLimit is null && maxEpochs is null) return $"--preset {preset}";
        var file = Path.Combine(work, $"{preset}-train{trainLimit}-max{maxEpochs}.json");
        File.WriteAllText(file, SpecOf(preset).ToJson());
        return $"--spec {Relative(file)}";
    }
    bool plan = options.GetValueOrDefault("plan") == "true";
    var rows = new List<JsonObject>();
    double totalGrowSeconds = 0;
    foreach (var preset in presets)
    {
        string arguments = $"grow {Source(preset)} --seed {seed}", tag = $"grow-{preset}-s{seed}";
        var r = !plan ? await Cli(arguments, tag) : Finished(arguments, Path.Combine(work, tag))
            ?? throw new ArgumentException($"--plan: no finished run of `./scalegrow {arguments}` in {Relative(Path.Combine(work, tag))}");
        r["tag"] = tag;
        rows.Add(r);
        totalGrowSeconds += (double)r["wallSeconds"]!;
    }
    // The baselines get the growth runs' mean wall time: epochs = that time / their measured seconds per epoch.
    // --budget S overrides it, for a comparison whose baselines already ran at S and that only adds growth runs.
    // The epochs are decided once and kept in bench/work/baselines-s<seed>.json, so a comparison interrupted between
    // two baselines goes on with the epochs it started with, not with a new, noisy probe's (which would also stop
    // --reuse from finding the finished baselines); the file holds for exactly these growth runs (tags and times).
    var planFile = Path.Combine(work, $"baselines-s{seed}.json");
    var growthKey = new JsonArray(rows.Select(r => (JsonNode)$"{r["tag"]} {(double)r["wallSeconds"]!:0.000}").ToArray());
    var kept = fixedBudget is null && File.Exists(planFile) ? JsonNode.Parse(File.ReadAllText(planFile))!.AsObject() : null;
    if (kept is not null && !JsonNode.DeepEquals(kept["growthRuns"], growthKey)) kept = null;
    double budget;
    if (kept is not null)
    {
        budget = (double)kept["budget"]!;
        md.AppendLine($"- baselines' budget and epochs as planned at {kept["plannedAt"]} ({Relative(planFile)}): {budget:0} s");
    }
    else
    {
        double mean = totalGrowSeconds / presets.Length;
        // A growth run reused from another session ran at that session's speed, and this VM's speed moves by 10-30 %
        // between sessions (RESULTS §2, 2026-12-05): each run's time is scaled to the machine's speed now.
        double scaledMean = mean;
        if (options.GetValueOrDefault("same-speed") != "false")
        {
            double scaledTotal = 0;
            for (int i = 0; i < presets.Length; i++)
            {
                var (ratio, how) = SpeedNowOverThen(SpecOf(presets[i]), (string)rows[i]["tag"]!);
                double wall = (double)rows[i]["wallSeconds"]!;
                scaledTotal += wall * ratio;
                md.AppendLine($"- {rows[i]["tag"]}: {wall:0} s as run, {wall * ratio:0} s at this machine's speed now ({how})");
            }
            scaledMean = scaledTotal / presets.Length;
        }
        budget = fixedBudget ?? scaledMean;
        if (fixedBudget is not null)
            md.AppendLine($"- baselines' budget fixed at {budget:0} s by --budget (the growth runs' mean is {scaledMean:0} s)");
        else
            md.AppendLine($"- baselines' budget: the growth runs' mean, {budget:0} s (as run: {mean:0} s)");
    }
    var planned = kept?["epochs"]?.AsObject() ?? new JsonObject();
    foreach (var preset in baselines)
    {
        int epochs;
        if (planned[preset] is { } p)
        {
            epochs = (int)p["epochs"]!;
            md.AppendLine($"- {preset}: {epochs} epochs as planned (probe then {(double)p["probeSeconds"]!:0} s/epoch)");
        }
        else
        {
            double epochSeconds = SecondsPerEpoch(SpecOf(preset));
            epochs = Math.Max(1, (int)Math.Round(budget / epochSeconds));
            md.AppendLine($"- {preset}: probe {epochSeconds:0} s/epoch → {epochs} epochs for a {budget:0} s budget");
            planned[preset] = new JsonObject { ["epochs"] = epochs, ["probeSeconds"] = epochSeconds };
            if (fixedBudget is null)
                File.WriteAllText(planFile, new JsonObject
                {
                    ["growthRuns"] = growthKey.DeepClone(), ["budget"] = budget,
                    ["plannedAt"] = (string?)kept?["plannedAt"] ?? $"{started:yyyy-MM-dd HH:mm} UTC",
                    ["epochs"] = planned.DeepClone(),
                }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        SavePartial();
        if (plan) continue;
        var r = await Cli($"train {Source(preset)} --seed {seed} --epochs {epochs}", $"train-{preset}-s{seed}");
        r["tag"] = $"train-{preset}-s{seed}";
        rows.Add(r);
    }
    md.AppendLine();
    Table(rows);
    if (plan) return;
    // Time to accuracy, one plot per growth preset: its growth run and every baseline on the same axes.
    var fixedRuns = rows.Skip(presets.Length).Select(r => (string)r["tag"]!).ToList();
    for (int i = 0; i < presets.Length; i++)
        TimeToAccuracyPlot($"growth-{started:yyyyMMdd-HHmm}-{presets[i]}-s{seed}",
            $"{presets[i]}, seed {seed}: time to accuracy", [(string)rows[i]["tag"]!, .. fixedRuns]);
}

async Task Ablations()
{
    var seeds = (options.GetValueOrDefault("seeds") ?? "1,2").Split(',').Select(long.Parse).ToArray();
    int trainLimit = int.Parse(options.GetValueOrDefault("train-limit") ?? "10000");
    // Fixed end point as in the thesis's tables 3-6…3-10 (all reach VGG-2-2-2), so only the strategy differs.
    // The quick preset's defaults (its data recipe, placement and function-preserving init) on the issue's 10k scale.
    var quick = Presets.Get("quick").Spec;
    RunSpec Base(long seed) => quick with
    {
        Seed = seed,
        Preset = "ablation",
        Data = quick.Data with { TrainLimit = trainLimit },
        Growth = quick.Growth with
        {
            IntervalEpochs = 1,
            MaxEpochs = 12,
            FineTuneEpochs = 3,
            Stopping = new StoppingOptions { Auto = false, TargetArch = "VGG-2-2-2" },
        },
        MeasureLatency = false,
    };
    var variants = new (string Name, Func<RunSpec, RunSpec> Change)[]
    {
        ("default (greedy-exclude-last, random with replacement, function-preserving, inherited optimizer)", s => s),
        ("placement: greedy", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.Greedy } }),
        ("placement: random", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.Random } }),
        ("placement: sequential", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.Sequential } }),
        ("branches: random without replacement", s => s with { Growth = s.Growth with { BranchSampling = BranchSampling.RandomWithoutReplacement } }),
        ("branches: greedy without replacement", s => s with { Growth = s.Growth with { BranchSampling = BranchSampling.GreedyWithoutReplacement } }),
        ("init: inherit", s => s with { Growth = s.Growth with { Init = new InitOptions() } }),
        ("init: zeros", s => s with { Growth = s.Growth with { Init = new InitOptions { Strategy = InitStrategy.Zeros } } }),
        ("optimizer: fresh", s => s with { Growth = s.Growth with { OptimizerMigration = OptimizerMigrationStrategy.Fresh } }),
    };
    await RunVariants("ablation", Base, variants, seeds);
}

async Task TransformerAblations()
{
    var seeds = (options.GetValueOrDefault("seeds") ?? "1,2").Split(',').Select(long.Parse).ToArray();
    int trainLimit = int.Parse(options.GetValueOrDefault("train-limit") ?? "6000");
    // Reduced fashion-vit (tables 3-11, 3-12, 3-16): 1-epoch intervals, 10 epochs of growth, no early stop, so
    // every variant makes the same number of growths and only the strategy differs.
    RunSpec Base(long seed) => Presets.Get("fashion-vit").Spec with
    {
        Seed = seed,
        Preset = "transformer-ablation",
        Data = new ScaleGrow.Data.DatasetSpec(TrainLimit: trainLimit),
        Growth = Presets.Get("fashion-vit").Spec.Growth with
        {
            IntervalEpochs = 1,
            MaxEpochs = 9,
            FineTuneEpochs = 2,
            Stopping = new StoppingOptions { Auto = false },
        },
        MeasureLatency = false,
    };
    var variants = new (string Name, Func<RunSpec, RunSpec> Change)[]
    {
        ("default (more heads, greedy depth, inherited moments + zero)", s => s),
        ("width: wider heads", s => s with { Growth = s.Growth with { TransformerWidth = TransformerWidthGrowth.HeadDim } }),
        ("depth: first", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.First } }),
        ("depth: last", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.Last } }),
        ("depth: random", s => s with { Growth = s.Growth with { DepthPlacement = DepthPlacement.Random } }),
        ("optimizer: fresh", s => s with { Growth = s.Growth with { OptimizerMigration = OptimizerMigrationStrategy.Fresh } }),
    };
    await RunVariants("tablation", Base, variants, seeds);
}

async Task RunVariants(string prefix, Func<long, RunSpec> baseSpec, (string Name, Func<RunSpec, RunSpec> Change)[] variants,
    long[] seeds)
{
    var results = new List<(string Variant, long Seed, JsonObject Result)>();
    foreach (var (name, change) in variants)
        foreach (var seed in seeds)
        {
            var spec = change(baseSpec(seed));
            var file = Path.Combine(work, $"{prefix}-{Slug(name)}-s{seed}.json");
            File.WriteAllText(file, spec.ToJson());
            results.Add((name, seed, await Cli($"grow --spec {Relative(file)}", $"{prefix}-{Slug(name)}-s{seed}")));
        }
    md.AppendLine("| variant | " + string.Join(" | ", seeds.Select(s => $"seed {s}")) + " | mean | final arch | params | wall s |");
    md.AppendLine("|---|" + string.Concat(seeds.Select(_ => "---|")) + "---|---|---|---|");
    foreach (var group in results.GroupBy(r => r.Variant))
    {
        var accs = group.Select(g => (double)g.Result["accuracy"]!).ToList();
        md.AppendLine($"| {group.Key} | " + string.Join(" | ", accs.Select(a => $"{a * 100:0.00}")) +
                      $" | {accs.Average() * 100:0.00} | {string.Join(", ", group.Select(g => (string)g.Result["arch"]!).Distinct())}" +
                      $" | {string.Join(", ", group.Select(g => $"{(long)g.Result["parametersFused"]! / 1e3:0.0}K"))}" +
                      $" | {group.Average(g => (double)g.Result["wallSeconds"]!):0} |");
    }
}

// Growth costs nothing when the grown model is as good as its own final architecture trained from scratch for the
// same number of epochs with the same data and recipe (the "oracle architecture": it needs hindsight to choose).
async Task Oracle()
{
    var presets = (options.GetValueOrDefault("presets") ?? "quick").Split(',');
    var seeds = (options.GetValueOrDefault("seeds") ?? "1,2").Split(',').Select(long.Parse).ToArray();
    var plots = new List<(string Name, string Title, string[] Tags)>();
    md.AppendLine("| preset | seed | grown arch | epochs | grown acc | oracle acc | grown − oracle | grown s | oracle s |");
    md.AppendLine("|---|---|---|---|---|---|---|---|---|");
    foreach (var preset in presets)
    {
        var gaps = new List<double>();
        foreach (var seed in seeds)
        {
            string growTag = $"grow-{preset}-s{seed}";
            var grown = await Cli($"grow --preset {preset} --seed {seed}", growTag);
            var report = JsonNode.Parse(File.ReadAllText(Path.Combine(work, growTag, "report.json")))!.AsObject();
            string arch = (string)report["finalArch"]!;
            int epochs = (int)report["epochs"]!;
            var oracleSpec = FixedAt(Presets.Get(preset).Spec, arch, epochs) with { Preset = $"{preset}-oracle" };
            var file = Path.Combine(work, $"oracle-{preset}-s{seed}.json");
            File.WriteAllText(file, oracleSpec.ToJson());
            var oracle = await Cli($"train --spec {Relative(file)} --seed {seed}", $"oracle-{preset}-s{seed}");
            double g = (double)grown["accuracy"]!, o = (double)oracle["accuracy"]!;
            gaps.Add(g - o);
            md.AppendLine($"| {preset} | {seed} | {arch} | {epochs} | {g * 100:0.00} % | {o * 100:0.00} % | " +
                          $"{(g - o) * 100:+0.00;-0.00} | {(double)grown["wallSeconds"]!:0} | {(double)oracle["wallSeconds"]!:0} |");
            plots.Add(($"oracle-{started:yyyyMMdd-HHmm}-{preset}-s{seed}", $"{preset}, seed {seed}: grown vs its oracle architecture",
                [growTag, $"oracle-{preset}-s{seed}"]));
        }
        md.AppendLine($"| {preset} | mean | | | | | {gaps.Average() * 100:+0.00;-0.00} | | |");
    }
    md.AppendLine();
    md.AppendLine("Oracle commands: `./scalegrow train --spec bench/work/oracle-<preset>-s<seed>.json --seed <seed>`.");
    foreach (var (name, title, tags) in plots) TimeToAccuracyPlot(name, title, tags);
}

// Any finished runs on one time-to-accuracy plot: --runs label=dir,... (dirs holding a report.json, relative to the
// repository root).
void TimeToAccuracyMode()
{
    var runs = (options.GetValueOrDefault("runs") ?? throw new ArgumentException("--runs label=dir,label=dir is required"))
        .Split(',').Select(r => r.Split('=', 2) is [var label, var dir] ? (label, dir)
            : throw new ArgumentException($"--runs: '{r}' is not label=dir")).ToList();
    string name = options.GetValueOrDefault("name") ?? $"time-to-accuracy-{started:yyyyMMdd-HHmm}";
    WriteTimeToAccuracy(name, options.GetValueOrDefault("title") ?? "time to accuracy",
        runs.Select(r => (r.label, Path.Combine(root, r.dir))).ToList());
}

void TimeToAccuracyPlot(string name, string title, IEnumerable<string> tags) =>
    WriteTimeToAccuracy(name, title, tags.Select(t => (t, Path.Combine(work, t))).ToList());

// The plot goes to bench/results/<name>.png and its table into this mode's results; --target (default 0.9) is the
// accuracy the table asks "who got there first" about.
void WriteTimeToAccuracy(string name, string title, List<(string Label, string Dir)> runs)
{
    double target = double.Parse(options.GetValueOrDefault("target") ?? "0.9", CultureInfo.InvariantCulture);
    var curves = runs.Select(r =>
    {
        string file = Path.Combine(r.Dir, "report.json");
        return TimeToAccuracy.FromReport(r.Label, JsonNode.Parse(File.ReadAllText(file))!.AsObject(), Relative(file));
    }).ToList();
    string png = Path.Combine(root, "bench", "results", name + ".png");
    Directory.CreateDirectory(Path.GetDirectoryName(png)!);
    File.WriteAllBytes(png, TimeToAccuracy.Plot(curves, title, target));
    md.AppendLine();
    md.AppendLine($"{title} ({Relative(png)}; time is since each run's first epoch began):");
    md.AppendLine();
    md.Append(TimeToAccuracy.Table(curves, target));
}

async Task Overhead()
{
    string preset = options.GetValueOrDefault("preset") ?? "quick";
    string? azurite = options.GetValueOrDefault("azurite");
    var runs = new List<(string Engine, JsonObject Result)>
    {
        ("direct (no engine), local store", await Cli($"grow --preset {preset} --engine direct", $"overhead-direct")),
        ("in-process engine, local store", await Cli($"grow --preset {preset}", $"overhead-inprocess")),
    };
    if (azurite is not null)
    {
        runs.Add(("in-process engine, Azurite store", await Cli($"grow --preset {preset} --store \"{azurite}\"", "overhead-azurite")));
        runs.Add(("Azure Storage backend (Azurite), Azurite store",
            await Cli($"grow --preset {preset} --engine azure-storage --store \"{azurite}\"", "overhead-azure-storage")));
    }
    double direct = (double)runs[0].Result["wallSeconds"]!;
    md.AppendLine("| engine and store | wall s | vs direct | same result |");
    md.AppendLine("|---|---|---|---|");
    foreach (var (engine, r) in runs)
    {
        double wall = (double)r["wallSeconds"]!;
        md.AppendLine($"| {engine} | {wall:0.0} | {(wall - direct) / direct * 100:+0.0;-0.0}% | " +
                      $"{((double)r["accuracy"]! == (double)runs[0].Result["accuracy"]! ? "yes" : "no")} (acc {(double)r["accuracy"]! * 100:0.00}) |");
    }
    if (runs[0].Result["activitySeconds"] is { } busy)
        md.AppendLine($"\nDirect run: {(double)busy:0.0} s inside activities of {direct:0.0} s wall.");
}

async Task<JsonObject> Cli(string arguments, string tag)
{
    string outDir = Path.Combine(work, tag);
    if (options.GetValueOrDefault("reuse") == "true" && Finished(arguments, outDir) is { } earlier) return earlier;
    File.Delete(outDir + ".command"); // the folder is about to be overwritten: its old command no longer describes it
    var info = new ProcessStartInfo(Path.Combine(root, "scalegrow"))
    {
        RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = root,
    };
    foreach (var a in SplitArgs($"{arguments} --json --out {Relative(outDir)}")) info.ArgumentList.Add(a);
    info.Environment["CI"] = "true";
    var clock = Stopwatch.StartNew();
    using var p = Process.Start(info)!;
    var stderr = p.StandardError.ReadToEndAsync();
    string stdout = await p.StandardOutput.ReadToEndAsync();
    await p.WaitForExitAsync();
    File.WriteAllText(Path.Combine(work, tag + ".log"), await stderr);
    if (p.ExitCode != 0) throw new InvalidOperationException($"`./scalegrow {arguments}` failed ({p.ExitCode}): {(await stderr).Split('\n').LastOrDefault(l => l.Length > 0)}");
    var result = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!.AsObject();
    result["command"] = $"./scalegrow {arguments}";
    result["processSeconds"] = clock.Elapsed.TotalSeconds;
    File.WriteAllText(outDir + ".command", CommandRecord(arguments));
    string line = $"{result["command"]}: {result["arch"]} acc {(double)result["accuracy"]! * 100:0.00}% in {result["wallSeconds"]} s";
    Console.WriteLine(line);
    finishedLines.Add(line);
    SavePartial();
    return result;
}

// A run that finished earlier with exactly these arguments (bench/work/<tag>.command, written after success), read back
// from the report.json it wrote, so an interrupted comparison can go on without re-running what it already measured.
JsonObject? Finished(string arguments, string outDir)
{
    string commandFile = outDir + ".command", reportFile = Path.Combine(outDir, "report.json");
    if (!File.Exists(commandFile) || !File.Exists(reportFile)) return null;
    var recorded = File.ReadAllLines(commandFile);
    if (recorded.Length == 0 || recorded[0].Trim() != arguments) return null;
    if (string.Join('\n', recorded).Trim() != CommandRecord(arguments).Trim())
    {
        // Same arguments, another spec: the preset or spec file changed since (or the run predates this record).
        Console.WriteLine($"{Relative(outDir)}: ran `{arguments}` with another spec than it resolves to now: running it again");
        return null;
    }
    var report = JsonNode.Parse(File.ReadAllText(reportFile))!.AsObject();
    var result = new JsonObject
    {
        ["command"] = $"./scalegrow {arguments}", ["arch"] = (string?)report["finalArch"],
        ["parametersFused"] = (long)report["parametersFused"]!, ["wallSeconds"] = (double)report["wallSeconds"]!,
        ["accuracy"] = (double)report["accuracy"]!,
        ["evaluation"] = new JsonObject
        {
            ["flops"] = (long)report["flops"]!, ["accuracy"] = (double)report["accuracy"]!,
            ["latencyMsBatch1"] = (double?)report["latencyMsBatch1"], ["latencyMsBatch64"] = (double?)report["latencyMsBatch64"],
        },
    };
    string line = $"{result["command"]}: reused from {Relative(outDir)}: {result["arch"]} acc {(double)result["accuracy"]! * 100:0.00}% in {result["wallSeconds"]} s";
    Console.WriteLine(line);
    finishedLines.Add(line);
    return result;
}

void Table(List<JsonObject> rows)
{
    md.AppendLine("| command | final arch | params (fused) | FLOPs | latency b1 / b64 ms | test acc | wall s |");
    md.AppendLine("|---|---|---|---|---|---|---|");
    foreach (var r in rows)
    {
        var e = r["evaluation"]!;
        md.AppendLine($"| `{r["command"]}` | {r["arch"]} | {(long)r["parametersFused"]! / 1e3:0.0}K | " +
                      $"{(long)e["flops"]! / 1e6:0.0}M | {(double?)e["latencyMsBatch1"]:0.00} / {(double?)e["latencyMsBatch64"]:0.0} | " +
                      $"{(double)e["accuracy"]! * 100:0.00}% | {(double)r["wallSeconds"]!:0} |");
    }
}

// Seconds per training epoch of a fixed spec on this machine (the same probe a sweep's budget.trialSeconds uses).
double SecondsPerEpoch(RunSpec spec) => ScaleGrow.Sweeps.EpochProbe.SecondsPerEpoch(spec);

// A growth spec's final architecture (e.g. "ResNet-2-1-0") trained fixed from scratch for the given epochs, same recipe.
static RunSpec FixedAt(RunSpec growSpec, string arch, int epochs) => growSpec with
{
    Kind = RunKind.Train,
    Epochs = epochs,
    Model = growSpec.Model with { LayersPerBlock = arch.Split('-').SkipWhile(p => !p.All(char.IsDigit)).Select(int.Parse).ToArray() },
};

// How fast this machine is now against when a finished growth run ran: the probe's seconds per epoch of the run's
// final architecture now, over the mean seconds its merged fine-tuning epochs (that same plain network) took then.
// A run without merged fine-tuning epochs has no such reference and keeps its time (ratio 1).
(double Ratio, string How) SpeedNowOverThen(RunSpec growSpec, string tag)
{
    var report = JsonNode.Parse(File.ReadAllText(Path.Combine(work, tag, "report.json")))!.AsObject();
    var fineTune = report["epochHistory"]!.AsArray()
        .Where(e => (string?)e!["phase"] == "fine-tune").Select(e => (double)e!["seconds"]!).ToList();
    if (growSpec.Growth.FineTuneBranches != FineTuneBranches.Merge || fineTune.Count == 0)
        return (1, "no merged fine-tuning epochs to compare, kept as run");
    string arch = (string)report["finalArch"]!;
    double now = SecondsPerEpoch(FixedAt(growSpec, arch, 1)), then = fineTune.Average();
    return (now / then, $"{arch}: probe {now:0} s/epoch now, its fine-tuning epochs {then:0} s then");
}

// What bench/work/<tag>.command holds: the arguments, then a fingerprint of the spec they resolve to (a preset's spec
// as the code defines it now, or the text of a --spec file), so that a run is reused only while its preset or spec
// file is unchanged: a preset's recipe change keeps its arguments and must not reuse runs of the old recipe.
string CommandRecord(string arguments)
{
    var a = SplitArgs(arguments).ToList();
    string Value(string flag) => a.IndexOf(flag) is var i and >= 0 && i + 1 < a.Count ? a[i + 1] : "";
    string spec = Value("--preset") is { Length: > 0 } preset ? Presets.Get(preset).Spec.ToJson()
        : Value("--spec") is { Length: > 0 } file ? File.ReadAllText(Path.Combine(root, file))
        : "";
    var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(spec));
    return $"{arguments}\nspec {Convert.ToHexString(hash)[..16].ToLowerInvariant()}\n";
}

// record-command --tag T --args "grow --preset P --seed N": a run made outside the bench (./scalegrow ... --json --out
// bench/work/T) becomes reusable, with the same record the bench writes after its own runs.
void RecordCommandMode()
{
    string tag = options.GetValueOrDefault("tag") ?? throw new ArgumentException("record-command needs --tag T");
    string arguments = options.GetValueOrDefault("args") ?? throw new ArgumentException("record-command needs --args \"...\"");
    if (!File.Exists(Path.Combine(work, tag, "report.json")))
        throw new ArgumentException($"bench/work/{tag}/report.json does not exist: the run did not finish");
    File.WriteAllText(Path.Combine(work, tag + ".command"), CommandRecord(arguments));
    Console.WriteLine($"recorded `{arguments}` for bench/work/{tag}");
}

static IEnumerable<string> SplitArgs(string s)
{
    var current = new StringBuilder();
    bool quoted = false;
    foreach (char c in s)
    {
        if (c == '"') { quoted = !quoted; continue; }
        if (c == ' ' && !quoted)
        {
            if (current.Length > 0) yield return current.ToString();
            current.Clear();
            continue;
        }
        current.Append(c);
    }
    if (current.Length > 0) yield return current.ToString();
}

string Relative(string path) => Path.GetRelativePath(root, path);

static string Slug(string s) => new string(s.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-')[..Math.Min(30, s.Length)].Trim('-');

static Dictionary<string, string> ParseOptions(string[] a)
{
    var d = new Dictionary<string, string>();
    for (int i = 0; i + 1 < a.Length; i += 2) d[a[i].TrimStart('-')] = a[i + 1];
    return d;
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ScaleGrow.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}

