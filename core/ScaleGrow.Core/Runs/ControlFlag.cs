using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ScaleGrow.Runs;

/// <summary>
/// The run's control flag (<c>runs/{id}/control.json</c>: stop, delete), read at most every few seconds so checking
/// it between batches costs nothing.
/// </summary>
internal sealed class ControlFlag(ScaleGrow.Storage.IArtifactStore store, string runId, double pollSeconds)
{
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private (bool Stop, bool Delete) _last;
    private bool _read;

    public (bool Stop, bool Delete) Read()
    {
        if (_read && _since.Elapsed.TotalSeconds < pollSeconds) return _last;
        _since.Restart();
        _read = true;
        try
        {
            var path = RunPaths.Control(runId);
            if (store.GetInfoAsync(path).GetAwaiter().GetResult() is null) return _last = (false, false);
            var node = JsonNode.Parse(store.ReadAllBytesAsync(path).GetAwaiter().GetResult());
            return _last = ((bool?)node?["stop"] ?? false, (bool?)node?["delete"] ?? false);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or IOException)
        {
            return _last; // a flag being rewritten right now: look again next time
        }
    }
}
