using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Data;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Training;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>grow</c> and <c>train</c>: submit a run and watch it through the orchestration on a local engine, then copy
/// its final artifacts to <c>--out</c> and print a short summary.
/// </summary>
public static class RunCommand
{
    private static readonly string[] Options = ["preset", "spec", "data", "out", "seed", "run-id", "store", "engine",
        "epochs", "task-hub", "quantize", "device"];

    public static async Task<int> ExecuteAsync(string command, string[] args)
    {
        var cl = CommandLine.Parse(command, args, Options, ["json"]);
        var output = new Output(cl.Flag("json"));
        var spec = BuildSpec(command, cl);
        CheckOutputFolder(cl.Get("out"));
        // This process computes the run's steps: say where, before the first one (an unavailable device fails here).
        var device = ComputeDevice.Resolve(spec.Device);
        output.Line($"device: {Markup.Escape(device.Name)} (asked: {Markup.Escape(spec.Device)}), " +
                    $"{TorchSharp.torch.get_num_threads()} intra-op thread(s)");
        var (store, connection) = StoreOptions.Open(cl);
        var engineKind = StoreOptions.Engine(cl);
        string runId = RunPaths.ValidateRunId(cl.Get("run-id") ?? RunsService.NewRunId(spec));

        using var cts = new CancellationTokenSource();
        var progress = new ProgressView(output);
        var steps = new RunSteps(store) { Progress = progress };
        await using var engine = engineKind == EngineKind.Direct ? null : await LocalEngine.StartAsync(engineKind, steps,
            connection, cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, cts.Token);
        var runs = engine is null ? null : new RunsService(engine.Client, store);
        // This process executes the run from here on: a second process asking to (a `runs resume`, the same
        // `grow --run-id` twice) is refused instead of running every step again (issue 16).
        await using var lease = await RunLease.AcquireAsync(store, runId, cts.Token);

        if (engineKind == EngineKind.Direct)
            return await RunDirectAsync(output, spec, runId, store, steps, progress, cl.Get("out"), cts.Token);
        string instanceId;
        if (cl.Get("run-id") is not null && await engine!.Client.GetInstanceAsync(runId, cts.Token) is { IsCompleted: false })
        {
            instanceId = runId; // a run whose history survived in the engine's store: it continues by itself
            output.Human.MarkupLine($"[yellow]run {runId} is already in progress; continuing to watch it[/]");
        }
        else
        {
            instanceId = await runs!.StartAsync(spec, runId, cts.Token);
        }

        return await WatchAndReportAsync(output, engine!, runs!, store, steps, engineKind, instanceId, progress, cl.Get("out"), cts.Token);
    }

    /// <summary>
    /// <c>--engine direct</c>: the same orchestration code with no engine (activities called in process), for
    /// measuring what the engines cost and for one-off runs; not crash-durable.
    /// </summary>
    private static async Task<int> RunDirectAsync(Output output, RunSpec spec, string runId, IArtifactStore store,
        RunSteps steps, ProgressView progress, string? outDir, CancellationToken token)
    {
        if (await new RunCatalog(store).GetAsync(runId, token) is { } existing)
            throw new RunExistsException(runId, existing.Status == "completed");
        await RunSteps.SubmitAsync(store, runId, spec, token);
        var runner = new DirectOrchestrationRunner();
        ActivityTable.For(steps).AddTo(runner);
        // The event ends the loop between steps; the control flag halts a training step between batches.
        using var signals = new StopSignals(signal =>
        {
            runner.RaiseEvent(TaskNames.StopEvent, "stop");
            _ = new RunCatalog(store).RequestStopAsync(runId);
            progress.Note($"{signal}: stopping gracefully, fusing and reporting the model so far ({signal} again to end now)");
        });
        try
        {
            var run = runner.RunAsync<GrowthRunInput, RunSummary>(runId, new GrowthRunInput(runId, null),
                GrowthOrchestration.RunAsync);
            await progress.WatchAsync(run, () => runner.CustomStatus as RunStatus, token);
            var summary = await run ?? throw Deleted(runId);
            return await ReportSummaryAsync(output, runId, summary, store, outDir, runner.ActivitySeconds, token);
        }
        catch (TaskFailedException e) when (e.FailureDetails.IsCausedBy<ScaleGrowException>())
        {
            throw new ScaleGrowException($"run {runId} failed: {e.FailureDetails.ErrorMessage.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>
    /// <c>--out</c> must be a folder this process can write, checked before any training: an empty path, a file or an
    /// unwritable place used to fail only after the whole run (issue 16).
    /// </summary>
    internal static void CheckOutputFolder(string? dir)
    {
        if (dir is null) return;
        if (dir.Trim().Length == 0) throw new UsageException("--out: the path is empty");
        if (File.Exists(dir)) throw new UsageException($"--out: '{dir}' is a file, not a folder");
        try
        {
            Directory.CreateDirectory(dir);
            string probe = Path.Combine(dir, $".scalegrow-write-check-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new UsageException($"--out: cannot write to '{dir}': {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>`runs resume ID`: continues a run from its last journaled state on a local engine, and watches it.</summary>
    public static async Task<int> ResumeAsync(string runId, CommandLine cl, Output output, IArtifactStore store,
        string? connection, EngineKind engineKind)
    {
        CheckOutputFolder(cl.Get("out"));
        using var cts = new CancellationTokenSource();
        var progress = new ProgressView(output);
        var steps = new RunSteps(store) { Progress = progress };
        await using var engine = await LocalEngine.StartAsync(engineKind, steps, connection,
            cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, cts.Token);
        var runs = new RunsService(engine.Client, store);
        var listing = await new RunCatalog(store).GetAsync(runId, cts.Token) ?? throw new RunNotFoundException(runId);
        if (listing.Status == "completed")
            throw new RunExistsException(runId, completed: true); // resuming it would redo its end and overwrite it
        await using var lease = await RunLease.AcquireAsync(store, runId, cts.Token);
        string instanceId;
        if (engineKind == EngineKind.AzureStorage && await engine.Client.GetInstanceAsync(runId, cts.Token) is not null)
        {
            instanceId = await runs.ResumeAsync(runId, cts.Token);
        }
        else
        {
            var state = await runs.LastStateAsync(runId, cts.Token);
            instanceId = await runs.ContinueAsync(runId, state, cts.Token);
            output.Human.MarkupLine(state is null
                ? $"[yellow]run {runId} recorded no growth cycle: starting it again from its spec[/]"
                : $"resuming run {runId} from step {state.Checkpoint.Step} (epoch {state.Position.Epoch}, {Markup.Escape(state.Arch)})");
        }
        return await WatchAndReportAsync(output, engine, runs, store, steps, engineKind, instanceId, progress, cl.Get("out"), cts.Token);
    }

    private static async Task<int> WatchAndReportAsync(Output output, LocalEngine engine, RunsService runs,
        IArtifactStore store, RunSteps steps, EngineKind engineKind, string instanceId, ProgressView progress,
        string? outDir, CancellationToken token)
    {
        string runId = RunsService.RunIdOf(instanceId);
        var signalled = new TaskCompletionSource();
        using var signals = new StopSignals(signal =>
        {
            _ = runs.StopAsync(runId);
            progress.Note($"{signal}: stopping gracefully, fusing and reporting the model so far ({signal} again to end now)");
            signalled.TrySetResult();
        });
        var watch = progress.WatchAsync(engine.Client, instanceId, token);
        if (engineKind == EngineKind.InProcess && await Task.WhenAny(watch, signalled.Task) == signalled.Task)
        {
            // The in-process engine's own hosts stop on the same signal (their console lifetime cannot be turned
            // off), so the orchestration cannot go on to fuse and report. The control flag makes the training step
            // halt between batches and keep its checkpoint; once the engine is down, the run is finished here from
            // its last journaled state, with the same orchestration code and no engine.
            if (await Task.WhenAny(watch, Task.Delay(TimeSpan.FromSeconds(10), token)) != watch || !watch.IsCompletedSuccessfully
                || watch.Result.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
                return await FinishStoppedRunAsync(output, engine, runs, store, steps, runId, progress, outDir, token);
        }
        var metadata = await watch;
        return await ReportAsync(output, runId, metadata, store, outDir, token);
    }

    /// <summary>A stopped run whose engine is gone: fuse, evaluate and report from its last journaled state.</summary>
    private static async Task<int> FinishStoppedRunAsync(Output output, LocalEngine engine, RunsService runs,
        IArtifactStore store, RunSteps steps, string runId, ProgressView progress, string? outDir, CancellationToken token)
    {
        var disposing = engine.DisposeAsync().AsTask(); // waits for the halting training step to write its checkpoint
        await Task.WhenAny(disposing, Task.Delay(TimeSpan.FromSeconds(60), token));
        var state = await runs.LastStateAsync(runId, token)
                    ?? throw new ScaleGrowException($"run {runId} stopped with no recorded state to finish from (a " +
                                                    $"train run, or before its first growth cycle): continue it with `scalegrow runs resume {runId}`");
        state = state with { StopRequested = true, StopReason = state.StopReason ?? "stop requested" };
        var runner = new DirectOrchestrationRunner();
        ActivityTable.For(steps).AddTo(runner);
        var run = runner.RunAsync<GrowthRunInput, RunSummary>(runId, new GrowthRunInput(runId, state),
            GrowthOrchestration.RunAsync);
        await progress.WatchAsync(run, () => runner.CustomStatus as RunStatus, token);
        var summary = await run ?? throw Deleted(runId);
        return await ReportSummaryAsync(output, runId, summary, store, outDir, runner.ActivitySeconds, token);
    }

    /// <summary>A run ends with no summary only when `runs delete` removed it while it ran.</summary>
    private static ScaleGrowException Deleted(string runId) =>
        new($"run {runId} was deleted (`scalegrow runs delete {runId}`) while it ran; none of its files are kept");

    private static RunSpec BuildSpec(string command, CommandLine cl)
    {
        string? preset = cl.Get("preset"), file = cl.Get("spec");
        if ((preset is null) == (file is null))
            throw new UsageException($"{command}: give exactly one of --preset NAME or --spec FILE");
        RunSpec spec;
        if (preset is not null)
        {
            spec = Presets.Get(preset).Spec;
        }
        else
        {
            if (!File.Exists(file)) throw new UsageException($"{command}: --spec: no such file '{file}'");
            spec = RunSpec.FromJson(File.ReadAllText(file!), file!);
        }
        if (command == "train" && spec.Kind != RunKind.Train)
            throw new UsageException($"train: {(preset ?? file)} is a {spec.Kind.ToString().ToLowerInvariant()} spec; use `scalegrow grow`");
        if (command == "grow" && spec.Kind is not (RunKind.Grow or RunKind.Scale))
            throw new UsageException($"grow: {(preset ?? file)} is a {spec.Kind.ToString().ToLowerInvariant()} spec; use `scalegrow train`");
        if (cl.Get("data") is { } dir) spec = spec with { Data = spec.Data with { Directory = dir } };
        if (cl.Long("seed", 0) is { } seed) spec = spec with { Seed = seed };
        if (cl.Get("device") is { } device) spec = spec with { Device = device };
        if (cl.Int("epochs", 1, 10000) is { } epochs) spec = spec with { Epochs = epochs };
        if (cl.Int("quantize", 2, 8) is { } bits)
            spec = spec with { Quantization = (spec.Quantization ?? new ScaleGrow.Quantization.QuantizationOptions()) with { Bits = bits } };
        spec.Validate();
        // The data must be there before a run is registered (a missing folder used to fail in InitializeRun and
        // leave a failed run behind); a local command may read any path its user can.
        DataAccessPolicy.Unrestricted.Check(spec);
        return spec;
    }

    private static async Task<int> ReportAsync(Output output, string runId, OrchestrationMetadata metadata,
        IArtifactStore store, string? outDir, CancellationToken cancellationToken)
    {
        if (metadata.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            string why = metadata.FailureDetails?.ErrorMessage ?? metadata.RuntimeStatus.ToString();
            output.Result(new JsonObject { ["runId"] = runId, ["status"] = metadata.RuntimeStatus.ToString(), ["error"] = why });
            bool userError = metadata.FailureDetails?.IsCausedBy<ScaleGrowException>() ?? false;
            throw userError ? new ScaleGrowException($"run {runId} failed: {why.ReplaceLineEndings(" ")}")
                : new InvalidOperationException($"run {runId} {metadata.RuntimeStatus.ToString().ToLowerInvariant()}: {why}");
        }
        return await ReportSummaryAsync(output, runId, metadata.ReadOutputAs<RunSummary>() ?? throw Deleted(runId),
            store, outDir, null, cancellationToken);
    }

    private static async Task<int> ReportSummaryAsync(Output output, string runId, RunSummary summary,
        IArtifactStore store, string? outDir, double? activitySeconds, CancellationToken cancellationToken)
    {
        outDir ??= Path.Combine("out", runId);
        Directory.CreateDirectory(outDir);
        var files = new JsonObject();
        foreach (var (name, path) in new[]
                 {
                     ("model.safetensors", summary.Model), ("fused.safetensors", summary.FusedModel),
                     ("report.json", summary.Report), ("curves.png", RunPaths.Final(runId, "curves.png")),
                     ($"model.w{summary.Quantized?.Bits}.safetensors", summary.Quantized?.Model ?? ""),
                     ("quantization.json", summary.Quantized?.Report ?? ""),
                     ("model.onnx", summary.Exported?.Onnx ?? ""),
                     ("model.tokenizer.json", summary.Exported?.Tokenizer ?? ""),
                     (Path.GetFileName(summary.Exported?.QuantizedOnnx ?? "model.onnx"),
                         summary.Exported?.QuantizedOnnx ?? ""),
                 })
        {
            if (path.Length == 0 || await store.GetInfoAsync(path, cancellationToken) is null) continue;
            var target = Path.Combine(outDir, name);
            AtomicFile.Write(target, await store.ReadAllBytesAsync(path, cancellationToken));
            files[name] = target;
        }
        var e = summary.Evaluation;
        output.Human.WriteLine();
        output.Human.MarkupLine($"[bold green]done[/] run [bold]{runId}[/]: [bold]{Markup.Escape(summary.Arch)}[/], " +
                                $"{summary.Parameters:N0} parameters ({summary.ParametersFused:N0} after fusion)");
        output.Human.MarkupLine((e.Perplexity is { } ppl
                                    ? $"test perplexity [bold]{ppl:0.00}[/], next-token accuracy {e.Accuracy:P2} on {e.Samples:N0} tokens, "
                                    : $"test accuracy [bold]{e.Accuracy:P2}[/] on {e.Samples:N0} samples, ") +
                                $"FLOPs {e.Flops / 1e6:0.0} M, CPU latency {e.LatencyMsBatch1:0.00} ms (batch 1) / " +
                                $"{e.LatencyMsBatch64:0.0} ms (batch 64), {summary.Growths} growths in {summary.Epochs} epochs, " +
                                $"{summary.WallSeconds:0} s");
        if (summary.StopReason is { } reason) output.Human.MarkupLine($"growth stopped: {Markup.Escape(reason)}");
        if (summary.Quantized is { } q)
            output.Human.MarkupLine($"quantized ({q.Method}, {q.Bits} bits): accuracy {q.AccuracyBefore:P2} → " +
                                    $"[bold]{q.AccuracyAfter:P2}[/], {q.Fp32Bytes:N0} → {q.QuantizedBytes:N0} bytes");
        output.Human.MarkupLine($"files in [bold]{Markup.Escape(Path.GetFullPath(outDir))}[/]: " +
                                string.Join(", ", files.Select(f => f.Key)));
        var result = JsonSerializer.SerializeToNode(summary, CliJson.Default.RunSummary)!.AsObject();
        result["accuracy"] = e.Accuracy;
        if (e.Perplexity is { } perplexity) result["perplexity"] = perplexity;
        if (activitySeconds is { } busy) result["activitySeconds"] = busy;
        result["files"] = files;
        output.Result(result);
        return 0;
    }
}

/// <summary>Where runs are stored and which engine hosts them.</summary>
public static class StoreOptions
{
    public const string DefaultLocalStore = ".scalegrow/store";

    public static (IArtifactStore Store, string? Connection) Open(CommandLine cl)
    {
        string location = cl.Get("store") ?? Environment.GetEnvironmentVariable("SCALEGROW_STORE") ?? DefaultLocalStore;
        var store = ArtifactStores.Open(location);
        bool isConnection = location.Contains('=') || location.StartsWith("UseDevelopmentStorage", StringComparison.Ordinal);
        return (new CachingArtifactStore(store, 512L << 20), isConnection ? location : null);
    }

    public static EngineKind Engine(CommandLine cl) => cl.Choice("engine", "inprocess", "azure-storage", "direct") switch
    {
        "azure-storage" => EngineKind.AzureStorage,
        "direct" => EngineKind.Direct,
        _ => EngineKind.InProcess,
    };
}
