using System.Text.Json;
using System.Text.Json.Nodes;
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
        if (runId is not null && await SweepSteps.IsSweepAsync(store, runId))
            return await SweepAsync(verb, runId, cl, output, store, connection, engineKind);

        switch (verb)
        {
            case "list":
            {
                var runs = await catalog.ListAsync();
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
                if (listing.Status == "completed")
                {
                    output.Human.MarkupLine($"run {runId} has already completed; nothing to stop");
                    output.Result(new JsonObject { ["runId"] = runId, ["stopping"] = false, ["status"] = listing.Status });
                    return 0;
                }
                if (engineKind == EngineKind.AzureStorage)
                {
                    await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
                        cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, default, withWorker: false);
                    await new RunsService(engine.Client, store).StopAsync(runId!);
                }
                else
                {
                    await catalog.RequestStopAsync(runId!);
                }
                output.Human.MarkupLine($"stop requested for {runId}: it finishes after its current step");
                output.Result(new JsonObject { ["runId"] = runId, ["stopping"] = true });
                return 0;
            }
            case "delete":
            {
                int? files;
                if (engineKind == EngineKind.AzureStorage)
                {
                    await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
                        cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, default, withWorker: false);
                    files = await new RunsService(engine.Client, store).DeleteAsync(runId!);
                }
                else
                {
                    files = await catalog.GetAsync(runId!) is null ? null : await catalog.DeleteAsync(runId!);
                }
                if (files is null) throw new RunNotFoundException(runId!);
                output.Human.MarkupLine($"deleted {runId} and its {files} files");
                output.Result(new JsonObject { ["runId"] = runId, ["deleted"] = true, ["files"] = files });
                return 0;
            }
            case "resume":
                return await RunCommand.ResumeAsync(runId!, cl, output, store, connection, engineKind);
            default:
                throw new UsageException($"runs: unknown verb '{verb}' (expected list, show, stop, resume, delete)");
        }
    }

    /// <summary>show, stop, resume and delete on a sweep: every trial with it.</summary>
    private static async Task<int> SweepAsync(string verb, string sweepId, CommandLine cl, Output output,
        IArtifactStore store, string? connection, EngineKind engineKind)
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
            {
                if (listing.Status == "completed")
                {
                    output.Human.MarkupLine($"sweep {sweepId} has already completed; nothing to stop");
                    output.Result(new JsonObject { ["runId"] = sweepId, ["stopping"] = false, ["status"] = listing.Status });
                    return 0;
                }
                if (engineKind == EngineKind.AzureStorage)
                {
                    await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
                        cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, default, withWorker: false);
                    await new SweepsService(engine.Client, store).StopAsync(sweepId);
                }
                else
                {
                    await sweeps.RequestStopAsync(sweepId);
                }
                output.Human.MarkupLine($"stop requested for sweep {sweepId}: running trials fuse and report, no more start");
                output.Result(new JsonObject { ["runId"] = sweepId, ["stopping"] = true });
                return 0;
            }
            case "delete":
            {
                int? files;
                if (engineKind == EngineKind.AzureStorage)
                {
                    await using var engine = await LocalEngine.StartAsync(engineKind, new RunSteps(store), connection,
                        cl.Get("task-hub") ?? "scalegrow", NullLoggerFactory.Instance, default, withWorker: false);
                    files = await new SweepsService(engine.Client, store).DeleteAsync(sweepId);
                }
                else
                {
                    files = await sweeps.DeleteAsync(sweepId);
                }
                output.Human.MarkupLine($"deleted sweep {sweepId}, its trials and their {files} files");
                output.Result(new JsonObject { ["runId"] = sweepId, ["deleted"] = true, ["files"] = files });
                return 0;
            }
            case "resume":
                return await SweepCommand.ResumeAsync(sweepId, cl, output, store, connection, engineKind);
            default:
                throw new UsageException($"runs: unknown verb '{verb}' (expected list, show, stop, resume, delete)");
        }
    }
}
