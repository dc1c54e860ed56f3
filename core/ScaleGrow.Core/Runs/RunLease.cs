using System.Diagnostics;
using System.Text.Json.Nodes;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

/// <summary>
/// The claim of one process to execute a run: <c>runs/{id}/lease.json</c>, created only when free (an atomic
/// create-if-absent in every store) and renewed every few seconds while the process works on the run. A second process
/// that wants to execute the same run (a second <c>runs resume</c>, a <c>grow --run-id</c> of a run another process
/// is watching) finds a live lease and is refused with <see cref="RunBusyException"/>, instead of executing every
/// remaining step a second time (issue 16). A lease whose holder is gone is taken over: at once when the holder was a
/// process on this machine that no longer exists (a crashed or killed run), otherwise once it has not been renewed for
/// <see cref="TimeToLive"/>. <c>runs delete</c> uses it to wait until a running process has let go of the run.
/// </summary>
public sealed class RunLease : IAsyncDisposable
{
    /// <summary>A lease not renewed for this long is taken over by the next process that asks.</summary>
    public static readonly TimeSpan TimeToLive = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(10);

    private readonly IArtifactStore _store;
    private readonly string _path;
    private readonly string _token;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _renewal;
    private string _eTag;

    private RunLease(IArtifactStore store, string runId, string token, string eTag)
    {
        _store = store;
        RunId = runId;
        _path = RunPaths.Lease(runId);
        _token = token;
        _eTag = eTag;
        _renewal = RenewAsync();
    }

    public string RunId { get; }

    /// <summary>Set when a renewal found the lease taken by another process (this one was paused past its TTL).</summary>
    public bool Lost { get; private set; }

    /// <summary>Who holds a run's lease, as recorded in it.</summary>
    public sealed record Holder(string Host, int ProcessId, long ProcessStartTicks, DateTimeOffset RenewedUtc)
    {
        public override string ToString() => $"process {ProcessId} on {Host}";
    }

    /// <summary>Claims the run for this process, or throws <see cref="RunBusyException"/> naming who holds it.</summary>
    public static async Task<RunLease> AcquireAsync(IArtifactStore store, string runId,
        CancellationToken cancellationToken = default)
    {
        string path = RunPaths.Lease(runId);
        string token = Guid.NewGuid().ToString("N");
        for (int attempt = 0; attempt < 5; attempt++)
        {
            var current = await ReadAsync(store, runId, cancellationToken);
            try
            {
                ArtifactInfo written;
                if (current is null)
                    written = await store.WriteAsync(path, Content(token), ArtifactWriteOptions.IfNotExists,
                        cancellationToken);
                else if (!IsLive(current.Value.Holder))
                    written = await store.WriteAsync(path, Content(token),
                        ArtifactWriteOptions.IfMatch(current.Value.ETag), cancellationToken);
                else
                    throw new RunBusyException(runId, current.Value.Holder);
                return new RunLease(store, runId, token, written.ETag);
            }
            catch (ArtifactConflictException)
            {
                // Another process created or took over the lease between our read and our write: read it again.
            }
        }
        var holder = await ReadAsync(store, runId, cancellationToken);
        throw holder is { } h ? new RunBusyException(runId, h.Holder)
            : new RunBusyException(runId, new Holder("?", 0, 0, DateTimeOffset.UtcNow));
    }

    /// <summary>The run's current holder when a live process holds it; null when it is free or its holder is gone.</summary>
    public static async Task<Holder?> LiveHolderAsync(IArtifactStore store, string runId,
        CancellationToken cancellationToken = default) =>
        await ReadAsync(store, runId, cancellationToken) is { } current && IsLive(current.Holder) ? current.Holder : null;

    /// <summary>
    /// Whether a recorded holder still counts: renewed within <see cref="TimeToLive"/>, and, when it was a process on
    /// this machine, that process (the same one: pid and start time) still exists.
    /// </summary>
    public static bool IsLive(Holder holder)
    {
        if (DateTimeOffset.UtcNow - holder.RenewedUtc > TimeToLive) return false;
        if (!string.Equals(holder.Host, Environment.MachineName, StringComparison.Ordinal)) return true;
        // Start times are derived from the boot time, which each process computes for itself: they differ by a few
        // milliseconds between processes, so "the same process" allows a second (a reused pid never starts that close).
        return StartTicksOf(holder.ProcessId) is { } ticks
               && Math.Abs(ticks - holder.ProcessStartTicks) < TimeSpan.TicksPerSecond;
    }

    private static long? StartTicksOf(int processId)
    {
        try
        {
            using var p = Process.GetProcessById(processId);
            return p.StartTime.ToUniversalTime().Ticks;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException
                                      or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return null; // no such process (any more)
        }
    }

    private static ReadOnlyMemory<byte> Content(string token)
    {
        using var self = Process.GetCurrentProcess();
        return System.Text.Encoding.UTF8.GetBytes(new JsonObject
        {
            ["token"] = token, ["host"] = Environment.MachineName, ["processId"] = Environment.ProcessId,
            ["processStartTicks"] = self.StartTime.ToUniversalTime().Ticks,
            ["renewedUtc"] = DateTimeOffset.UtcNow.ToString("O"),
        }.ToJsonString());
    }

    private static async Task<(Holder Holder, string ETag, string? Token)?> ReadAsync(IArtifactStore store,
        string runId, CancellationToken cancellationToken)
    {
        ArtifactContent content;
        try
        {
            content = await store.ReadAsync(RunPaths.Lease(runId), cancellationToken);
        }
        catch (ArtifactNotFoundException) // absent, or being moved into place by a concurrent claimant: try again
        {
            return null;
        }
        try
        {
            var node = JsonNode.Parse(content.Bytes.Span);
            var holder = new Holder((string?)node?["host"] ?? "?", (int?)node?["processId"] ?? 0,
                (long?)node?["processStartTicks"] ?? 0,
                DateTimeOffset.TryParse((string?)node?["renewedUtc"], out var renewed) ? renewed : DateTimeOffset.MinValue);
            return (holder, content.Info.ETag, (string?)node?["token"]);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            // A damaged lease protects nothing: treat it as expired so that it can be taken over.
            return (new Holder("?", 0, 0, DateTimeOffset.MinValue), content.Info.ETag, null);
        }
    }

    private async Task RenewAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(RenewEvery, _stop.Token);
                _eTag = (await _store.WriteAsync(_path, Content(_token), ArtifactWriteOptions.IfMatch(_eTag),
                    _stop.Token)).ETag;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ArtifactConflictException)
            {
                Lost = true; // taken over (or deleted by `runs delete`): stop renewing, never fight for it
                return;
            }
            catch (ArtifactStoreException)
            {
                // Transient: try again at the next tick; the TTL leaves room for two misses.
            }
        }
    }

    /// <summary>Stops renewing and frees the run, unless another process has taken the lease meanwhile.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync();
        await _renewal;
        _stop.Dispose();
        if (Lost) return;
        try
        {
            if (await ReadAsync(_store, RunId, CancellationToken.None) is { Token: var token } && token == _token)
                await _store.DeleteAsync(_path, CancellationToken.None);
        }
        catch (ArtifactStoreException)
        {
            // The lease expires by itself.
        }
    }
}

/// <summary>Another live process is executing the run (HTTP 409).</summary>
public sealed class RunBusyException(string runId, RunLease.Holder holder, string? why = null) : ScaleGrowException(
    $"run '{runId}' is being executed by {holder} (lease renewed {Age(holder)} ago); " +
    (why ?? $"wait for it, or stop it with `scalegrow runs stop {runId}`"))
{
    private static string Age(RunLease.Holder holder)
    {
        var age = DateTimeOffset.UtcNow - holder.RenewedUtc;
        return age.TotalSeconds < 0 || age > TimeSpan.FromDays(1) ? "?" : $"{age.TotalSeconds:0} s";
    }
}
