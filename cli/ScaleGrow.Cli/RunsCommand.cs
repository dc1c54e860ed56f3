using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging.Abstractions;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Sweeps;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// <c>runs list | show ID | stop ID | resume ID | delete ID</c> against a store. With <c>--engine azure-storage</c>
/// the engine's own records are used (runs survive processes there); with the default in-process engine a run lives
/// in the store alone: its journal and report say how far it got, <c>stop</c> sets its control flag (a
/// <c>scalegrow grow</c> still running picks that up within seconds), <c>resume</c> continues it here from its
/// last journaled state, and <c>delete</c> stops a process still running it, waits for it to let go, and removes
/// the run with all its files.
/// </summary>
public static class RunsCommand
{
    public static async Task<int> ExecuteAsync(string[] args)
    {
        if (args.Length == 0) throw new UsageException("runs: expected list, show ID, stop ID, resume ID or delete ID");
        string verb = args[0];
        int positionals = verb == "list" ? 0 : 1;
        var cl = CommandLine.Parse($"runs {verb}", args[1..], ["store", "engine", "task-hub", "out", "page-size"],
            ["json"], positionals);
        if (cl.Positionals.Count != positionals)
            throw new UsageException($"runs {verb}: expected {(positionals == 0 ? "no run id" : "a run id")}");
        var output = new Output(cl.Flag("json"));
        var (store, connection) = StoreOptions.Open(cl);
        var engineKind = StoreOptions.Engine(cl);
        string? runId = positionals == 1 ? RunPaths.ValidateRunId(cl.Positionals[0]) : null;
        var catalog = new RunCatalog(store);
        var engine = new EngineTarget(engineKind, store, connection, cl.Get("task-hub") ?? "scalegrow");
        if (runId is not null && await SweepSteps.IsSweepAsync(store, runId))
            return await SweepAsync(verb, runId, cl, output, store, connection, engine);

        switch (verb)
        {
            case "list":
            {
                var runs = await new ScaleGrow.Sweeps.SweepCatalog(store).ListAllAsync();
                var table = new Table().AddColumns("run", "kind", "status", "arch", "epochs", "accuracy");
                // A sweep, then its trials under it (indented); runs of no sweep as they are.
                var trials = runs.Where(r => r.Sweep is not null).ToLookup(r => r.Sweep!);
                foreach (var r in runs.Where(r => r.Sweep is null))
                {
                    table.AddRow(r.RunId, r.Kind, r.Status, Markup.Escape(r.Arch ?? ""),
                        r.Kind == "sweep" ? $"{r.TrialsFinished}/{r.Trials} trials" : r.Epochs.ToString(),
                        r.Accuracy is { } a ? a.ToString("P2") : "");
                    foreach (var t in trials[r.RunId])
                        table.AddRow("  " + t.RunId, "trial", t.Status, Markup.Escape(t.Arch ?? ""), t.Epochs.ToString(),
                            t.Accuracy is { } ta ? ta.ToString("P2") : "");
                }
                output.Human.Write(table);
                output.Result(new JsonObject { ["runs"] = JsonSerializer.SerializeToNode(runs, CliJson.Default.IReadOnlyListRunListing) });
                return 0;
            }
            case "show":
            {
                var info = await catalog.GetAsync(runId!) ?? throw new RunNotFoundException(runId!);
                output.Human.MarkupLine($"[bold]{info.RunId}[/] {info.Status} {Markup.Escape(info.Arch ?? "")} " +
                                        $"epochs {info.Epochs} growths {info.Growths}" +
                                        (info.Accuracy is { } a ? $" accuracy {a:P2}" : ""));
                foreach (var e in info.Epochs > 0 ? await catalog.EpochsAsync(runId!) : [])
                    output.Human.MarkupLine($"  epoch {e.Epoch + 1,3} {e.Phase,-9} " +
                                            $"{Markup.Escape(e.Arch),-16} val acc {e.ValidationAccuracy:P2}");
                output.Result(JsonSerializer.SerializeToNode(info, CliJson.Default.RunListing)!.AsObject());
                return 0;
            }
            case "stop":
            {
                var listing = await catalog.GetAsync(runId!) ?? throw new RunNotFoundException(runId!);
                return await StopAsync(runId!, listing.Status, $"run {runId}",
                    $"stop requested for {runId}: it finishes after its current step", output,
                    () => engine.ThroughAsync(client => new RunsService(client, store).StopAsync(runId!),
                        async () => { await catalog.RequestStopAsync(runId!); return true; }));
            }
            case "delete":
            {
                int? files = await engine.ThroughAsync(client => new RunsService(client, store).DeleteAsync(runId!),
                    async () => await catalog.GetAsync(runId!) is null
                        ? (int?)null
                        : await catalog.DeleteAsync(runId!));
                if (files is null) throw new RunNotFoundException(runId!);
                return Deleted(runId!, files, $"deleted {runId} and its {files} files", output);
            }
            case "resume":
                return await RunCommand.ResumeAsync(runId!, cl, output, store, connection, engineKind);
            default:
                throw new UsageException($"runs: unknown verb '{verb}' (expected list, show, stop, resume, delete)");
        }
    }

    /// <summary>show, stop, resume and delete on a sweep: every trial with it.</summary>
    private static async Task<int> SweepAsync(string verb, string sweepId, CommandLine cl, Output output,
        IArtifactStore store, string? connection, EngineTarget engine)
    {
        var sweeps = new SweepCatalog(store);
        var listing = (await sweeps.GetAsync(sweepId))!;
        switch (verb)
        {
            case "show":
            {
                var trials = await sweeps.TrialsAsync(sweepId);
                output.Human.MarkupLine($"[bold]{sweepId}[/] sweep {listing.Status}, {listing.TrialsFinished}/{listing.Trials} trials recorded");
                var table = new Table().AddColumns("trial", "state", "epochs", "arch", "accuracy", "configuration", "stop reason / error");
                foreach (var t in trials)
                    table.AddRow(t.RunId, t.State, t.Epochs.ToString(), Markup.Escape(t.Arch ?? ""),
                        t.Accuracy is { } a ? a.ToString("P2") : "", Markup.Escape(t.Configuration),
                        Markup.Escape(t.Error ?? t.StopReason ?? ""));
                output.Human.Write(table);
                var json = JsonSerializer.SerializeToNode(listing, CliJson.Default.RunListing)!.AsObject();
                json["trials"] = SweepCatalog.ToJson(trials)["trials"]!.DeepClone();
                output.Result(json);
                return 0;
            }
            case "stop":
                return await StopAsync(sweepId, listing.Status, $"sweep {sweepId}",
                    $"stop requested for sweep {sweepId}: running trials fuse and report, no more start", output,
                    () => engine.ThroughAsync(client => new SweepsService(client, store).StopAsync(sweepId),
                        async () => { await sweeps.RequestStopAsync(sweepId); return true; }));
            case "delete":
            {
                int? files = await engine.ThroughAsync(client => new SweepsService(client, store).DeleteAsync(sweepId),
                    async () => (int?)await sweeps.DeleteAsync(sweepId));
                return Deleted(sweepId, files, $"deleted sweep {sweepId}, its trials and their {files} files", output);
            }
            case "resume":
                return await SweepCommand.ResumeAsync(sweepId, cl, output, store, connection, engine.Kind);
            default:
                throw new UsageException($"runs: unknown verb '{verb}' (expected list, show, stop, resume, delete)");
        }
    }

    /// <summary>stop on a run or a sweep (<paramref name="what"/>): nothing to do once it has completed.</summary>
    private static async Task<int> StopAsync(string id, string status, string what, string requested, Output output,
        Func<Task> stop)
    {
        if (status == "completed")
        {
            output.Human.MarkupLine($"{what} has already completed; nothing to stop");
            output.Result(new JsonObject { ["runId"] = id, ["stopping"] = false, ["status"] = status });
            return 0;
        }
        await stop();
        output.Human.MarkupLine(requested);
        output.Result(new JsonObject { ["runId"] = id, ["stopping"] = true });
        return 0;
    }

    private static int Deleted(string id, int? files, string message, Output output)
    {
        output.Human.MarkupLine(message);
        output.Result(new JsonObject { ["runId"] = id, ["deleted"] = true, ["files"] = files });
        return 0;
    }

    /// <summary>
    /// Where stop and delete act: with the Azure Storage engine, through the engine's own records (a client-only
    /// engine, which must not pick up and run the orchestrations recorded there); with the in-process engine, a run
    /// lives in the store alone.
    /// </summary>
    private sealed record EngineTarget(EngineKind Kind, IArtifactStore Store, string? Connection, string TaskHub)
    {
        public async Task<T> ThroughAsync<T>(Func<DurableTaskClient, Task<T>> viaEngine, Func<Task<T>> inStore)
        {
            if (Kind != EngineKind.AzureStorage) return await inStore();
            await using var engine = await LocalEngine.StartAsync(Kind, new RunSteps(Store), Connection, TaskHub,
                NullLoggerFactory.Instance, default, withWorker: false);
            return await viaEngine(engine.Client);
        }
    }
}
