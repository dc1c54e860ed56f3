using System.Text.Json;
using Microsoft.DurableTask.Client;
using ScaleGrow.Runs;
using Spectre.Console;

namespace ScaleGrow.Cli;

/// <summary>
/// Shows a run's progress: the orchestration's custom status (phase, step, epoch, arch, params, accuracy) and, for
/// in-process engines, the current epoch's batches. Interactive terminals get a live line; CI and redirected output
/// get one line per change.
/// </summary>
public sealed class ProgressView(Output output) : IProgress<TrainingProgress>
{
    private readonly object _gate = new();
    private TrainingProgress? _batch;
    private string? _note;

    public void Report(TrainingProgress value)
    {
        lock (_gate) _batch = value;
    }

    public void Note(string message)
    {
        lock (_gate) _note = message;
    }

    public async Task<OrchestrationMetadata> WatchAsync(DurableTaskClient client, string instanceId,
        CancellationToken cancellationToken)
    {
        var console = output.Progress;
        string? lastLine = null;
        if (!output.Interactive)
        {
            while (true)
            {
                var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
                string line = Describe(m, includeBatch: false);
                if (line != lastLine) console.MarkupLine(line);
                lastLine = line;
                if (m is { IsCompleted: true }) return m;
                await Task.Delay(1000, cancellationToken);
            }
        }
        OrchestrationMetadata? result = null;
        await console.Live(new Markup("starting…")).AutoClear(false).StartAsync(async live =>
        {
            while (true)
            {
                var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken);
                live.UpdateTarget(new Markup(Describe(m, includeBatch: true)));
                if (m is { IsCompleted: true })
                {
                    result = m;
                    return;
                }
                await Task.Delay(250, cancellationToken);
            }
        });
        return result!;
    }

    /// <summary>Watches a run executed by the direct runner (no engine) until its task ends.</summary>
    public async Task WatchAsync(Task run, Func<RunStatus?> status, CancellationToken cancellationToken)
    {
        var console = output.Progress;
        string? last = null;
        while (!run.IsCompleted)
        {
            string line = Describe(status(), includeBatch: output.Interactive, running: true);
            if (line != last) console.MarkupLine(line);
            last = line;
            await Task.WhenAny(run, Task.Delay(output.Interactive ? 1000 : 2000, cancellationToken));
        }
    }

    private string Describe(OrchestrationMetadata? m, bool includeBatch)
    {
        if (m is null) return "waiting for the run to start…";
        RunStatus? s = null;
        if (m.SerializedCustomStatus is { Length: > 0 } json)
        {
            try
            {
                s = JsonSerializer.Deserialize<RunStatus>(json, JsonSerializerOptions.Web);
            }
            catch (JsonException)
            {
                // Not a growth run's status: show the runtime status only.
            }
        }
        if (s is null) return $"[grey]{m.RuntimeStatus}[/]";
        return Describe(s, includeBatch, m.RuntimeStatus == OrchestrationRuntimeStatus.Running);
    }

    private string Describe(RunStatus? s, bool includeBatch, bool running)
    {
        if (s is null) return "starting…";
        string text = $"[bold]{Markup.Escape(s.Phase)}[/] epoch {s.Epoch} step {s.Step} [bold]{Markup.Escape(s.Arch)}[/] " +
                      $"{s.Parameters / 1e3:0.0}K params" + (s.Accuracy is { } a ? $" val acc [green]{a:P2}[/]" : "");
        lock (_gate)
        {
            if (includeBatch && _batch is { } b && running)
                text += $"  [grey]epoch {b.Epoch + 1} batch {b.Batch}/{b.Batches} loss {b.Loss:0.000} lr {b.LearningRate:0.0000}[/]";
            if (_note is not null) text += $"\n[yellow]{Markup.Escape(_note)}[/]";
        }
        return text;
    }
}
