using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>sweep --spec FILE</c>: validates the whole sweep (every trial's spec) before anything starts, runs it through
/// the sweep orchestration on a local engine with a live table of trials, then copies sweep.json, sweep.md and
/// pareto.png to <c>--out</c>. <c>runs resume SWEEP</c> continues one that was killed.
/// </summary>
public static class SweepCommand
{
    private static readonly string[] Options = ["spec", "parallel", "store", "engine", "task-hub", "run-id", "out"];

    public static async Task<int> ExecuteAsync(string[] args)
    {
        var cl = CommandLine.Parse("sweep", args, Options, ["json"]);
        var output = new Output(cl.Flag("json"));
        string file = cl.Require("spec");
        if (!File.Exists(file)) throw new UsageException($"sweep: --spec: no such file '{file}'");
        int? parallel = cl.Get("parallel") is { } p
            ? int.TryParse(p, out int n) ? n : throw new UsageException($"sweep: --parallel must be an integer, got '{p}'")
            : null;
        var spec = SweepSpec.Parse(File.ReadAllText(file), file, parallel);
        RunCommand.CheckOutputFolder(cl.Get("out"));
        var engineKind = StoreOptions.Engine(cl);
        if (engineKind == EngineKind.Direct)
            throw new UsageException("sweep: --engine direct hosts one run; a sweep needs inprocess or azure-storage");
        var (store, connection) = StoreOptions.Open(cl);
        string sweepId = SweepPaths.ValidateSweepId(cl.Get("run-id") ?? SweepsService.NewSweepId());

        await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
            cl.Get("task-hub") ?? "scalegrow", Loggers(), default, sweeps: new SweepSteps(store));
        var sweeps = new SweepsService(engine.Client, store);
        await using var lease = await RunLease.AcquireAsync(store, sweepId);
        string instanceId;
        if (cl.Get("run-id") is not null && await engine.Client.GetInstanceAsync(sweepId) is { IsCompleted: false })
        {
            instanceId = sweepId; // its history survived in the engine's store: it continues by itself
            output.Human.MarkupLine($"[yellow]sweep {sweepId} is already in progress; continuing to watch it[/]");
        }
        else
        {
            instanceId = await sweeps.StartAsync(spec, sweepId);
            output.Human.MarkupLine($"sweep [bold]{sweepId}[/]: {spec.TrialCount} trials " +
                                    $"({string.Join(" × ", spec.Axes.Select(a => $"{a.Path}: {a.Values.Count}"))}, " +
                                    $"{spec.Mode}), {spec.Parallel} at a time" +
                                    (spec.EarlyStopping is { } e ? $", ASHA at epochs {string.Join(", ", e.Rungs)}" : ""));
        }
        return await WatchAndReportAsync(output, engine, sweeps, store, sweepId, instanceId, cl.Get("out"));
    }

    /// <summary>The engines' logs on stderr with SCALEGROW_DEBUG set; none otherwise (the live table is the output).
    /// </summary>
    private static Microsoft.Extensions.Logging.ILoggerFactory Loggers() =>
        Environment.GetEnvironmentVariable("SCALEGROW_DEBUG") is null
            ? NullLoggerFactory.Instance
            : Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(
                Microsoft.Extensions.Logging.LogLevel.Information));

    /// <summary>`runs resume SWEEP`: continues a sweep here as a new instance (finished trials are not run again).
    /// </summary>
    public static async Task<int> ResumeAsync(string sweepId, CommandLine cl, Output output, IArtifactStore store,
        string? connection, EngineKind engineKind)
    {
        RunCommand.CheckOutputFolder(cl.Get("out"));
        await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
            cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, default, sweeps: new SweepSteps(store));
        var sweeps = new SweepsService(engine.Client, store);
        await using var lease = await RunLease.AcquireAsync(store, sweepId);
        string instanceId = await sweeps.ResumeAsync(sweepId);
        output.Human.MarkupLine($"resuming sweep [bold]{sweepId}[/] as {instanceId}: finished trials are kept");
        return await WatchAndReportAsync(output, engine, sweeps, store, sweepId, instanceId, cl.Get("out"));
    }

    private static async Task<int> WatchAndReportAsync(Output output, LocalEngine engine, SweepsService sweeps,
        IArtifactStore store, string sweepId, string instanceId, string? outDir)
    {
        bool signalled = false;
        using var signals = new StopSignals(signal =>
        {
            signalled = true;
            _ = sweeps.StopAsync(sweepId);
            output.Progress.MarkupLine($"{signal}: stopping the sweep gracefully: running trials fuse and report, no " +
                                       $"more start ({signal} again to end now; `scalegrow runs resume {sweepId}` continues it)");
        });
        var catalog = new SweepCatalog(store);
        var shown = new Dictionary<string, string>();
        OrchestrationMetadata? m;
        while (true)
        {
            try
            {
                m = await engine.Client.GetInstanceAsync(instanceId, getInputsAndOutputs: true);
            }
            catch (Exception) when (signalled)
            {
                // The in-process engine's hosts stop on the same signal (their console lifetime), so the sweep cannot
                // finish here; its trials have their stop flags and keep what they trained.
                throw new ScaleGrowException($"sweep {sweepId} stopped with this process; `scalegrow runs resume " +
                                             $"{sweepId}` continues it (finished trials are kept)");
            }
            // The live table: one line per trial whenever its state, epoch, arch or accuracy changes.
            foreach (var t in await catalog.TrialsAsync(sweepId))
            {
                string line = $"{t.RunId,-34} {t.State,-11} epoch {t.Epochs,3}  {Markup.Escape(t.Arch ?? ""),-18} " +
                              $"{(t.Accuracy is { } a ? a.ToString("P2") : ""),8}  {Markup.Escape(t.Configuration)}";
                if (shown.GetValueOrDefault(t.RunId) == line || t.State == "pending") continue;
                shown[t.RunId] = line;
                output.Progress.MarkupLine(line);
            }
            if (m is null || m.IsCompleted) break;
            await Task.Delay(1000);
        }
        if (m is null) throw new ScaleGrowException($"sweep {sweepId}: its instance {instanceId} is gone from the engine");
        if (m.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            string why = m.FailureDetails?.ErrorMessage ?? m.RuntimeStatus.ToString();
            throw new ScaleGrowException($"sweep {sweepId} {m.RuntimeStatus.ToString().ToLowerInvariant()}: {why.ReplaceLineEndings(" ")}");
        }
        var summary = m.ReadOutputAs<SweepSummary>()
                      ?? throw new ScaleGrowException($"sweep {sweepId} was deleted (`scalegrow runs delete {sweepId}`) while it ran; none of its files are kept");
        outDir ??= Path.Combine("out", sweepId);
        Directory.CreateDirectory(outDir);
        var files = new JsonObject();
        foreach (var path in new[] { summary.Results, summary.Table, summary.Plot })
        {
            var target = Path.Combine(outDir, Path.GetFileName(path));
            AtomicFile.Write(target, await store.ReadAllBytesAsync(path));
            files[Path.GetFileName(path)] = target;
        }
        output.Human.WriteLine();
        output.Human.MarkupLine($"[bold green]done[/] sweep [bold]{sweepId}[/]: {summary.Trials} trials (" +
                                string.Join(", ", summary.ByStatus.Select(kv => $"{kv.Value} {kv.Key}")) +
                                $") in {summary.WallSeconds:0} s; the trials' own wall time {summary.TrialSeconds:0} s" +
                                (summary.StopReason is { } r ? $"; stopped: {Markup.Escape(r)}" : ""));
        foreach (var row in SweepReport.Configurations(await new SweepSteps(store).TrialsAsync(sweepId,
                     await new SweepSteps(store).ReadSpecAsync(sweepId))))
            output.Human.MarkupLine($"  {Markup.Escape(row.Configuration)}: " + (row.Accuracy is { } acc
                ? $"test accuracy {acc.Mean:0.00} ± {acc.Sd:0.00} % over {row.Finished}, {row.ParametersFusedK?.Mean:0.0} K parameters fused"
                : Markup.Escape(row.Statuses)));
        output.Human.MarkupLine($"files in [bold]{Markup.Escape(Path.GetFullPath(outDir))}[/]: " +
                                string.Join(", ", files.Select(f => f.Key)));
        var result = JsonSerializer.SerializeToNode(summary, CliJson.Default.SweepSummary)!.AsObject();
        result["files"] = files;
        output.Result(result);
        return 0;
    }
}
