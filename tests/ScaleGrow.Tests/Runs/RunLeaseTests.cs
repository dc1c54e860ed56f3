using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// One process executes a run at a time (issue 16: two resumers both ran every remaining step): the lease is claimed
/// atomically, refused while its holder lives, and taken over when the holder is gone — at once for a dead process on
/// this machine, after the time to live for one elsewhere. Run on a local folder and on Azurite.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunLeaseTests(AzuriteFixture azurite) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("scalegrow-lease-");

    public void Dispose() => _dir.Delete(recursive: true);

    public static TheoryData<string> Stores => new() { "local", "azurite" };

    private IArtifactStore Open(string kind) => kind == "local"
        ? new LocalFolderArtifactStore(_dir.FullName)
        : new BlobArtifactStore(azurite.ConnectionString);

    private static string NewRunId() => $"lease-{Guid.NewGuid():N}"[..24];

    private static Task WriteLeaseAsync(IArtifactStore store, string runId, string host, int pid, long startTicks,
        DateTimeOffset renewed) =>
        store.WriteAsync(RunPaths.Lease(runId), Encoding.UTF8.GetBytes(new JsonObject
        {
            ["token"] = "someone-else", ["host"] = host, ["processId"] = pid, ["processStartTicks"] = startTicks,
            ["renewedUtc"] = renewed.ToString("O"),
        }.ToJsonString()));

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task ASecondClaimIsRefusedWhileTheFirstIsHeldAndGrantedOnceItIsReleased(string kind)
    {
        var store = Open(kind);
        string runId = NewRunId();
        var first = await RunLease.AcquireAsync(store, runId);
        var e = await Assert.ThrowsAsync<RunBusyException>(() => RunLease.AcquireAsync(store, runId));
        Assert.Contains($"process {Environment.ProcessId} on {Environment.MachineName}", e.Message);
        Assert.NotNull(await RunLease.LiveHolderAsync(store, runId));
        await first.DisposeAsync();
        Assert.Null(await store.GetInfoAsync(RunPaths.Lease(runId)));
        await using var second = await RunLease.AcquireAsync(store, runId);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task TwoProcessesClaimingAtOnceGetOneLease(string kind)
    {
        string runId = NewRunId();
        // Separate store objects, as two processes would have.
        var claims = Enumerable.Range(0, 6).Select(_ => RunLease.AcquireAsync(Open(kind), runId)).ToList();
        try
        {
            await Task.WhenAll(claims);
        }
        catch (RunBusyException)
        {
        }
        Assert.Equal(1, claims.Count(c => c.IsCompletedSuccessfully));
        Assert.All(claims.Where(c => !c.IsCompletedSuccessfully), c => Assert.IsType<RunBusyException>(c.Exception!.InnerException));
        await (await claims.Single(c => c.IsCompletedSuccessfully)).DisposeAsync();
    }

    [Fact]
    public async Task TheLeaseOfAProcessOnThisMachineThatNoLongerExistsIsTakenOverAtOnce()
    {
        var store = Open("local");
        string runId = NewRunId();
        // A process that lives until its start time is read: `true` could exit (and be reaped) first on a loaded machine.
        using var gone = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        long ticks = gone.StartTime.ToUniversalTime().Ticks;
        gone.Kill();
        await gone.WaitForExitAsync();
        await WriteLeaseAsync(store, runId, Environment.MachineName, gone.Id, ticks, DateTimeOffset.UtcNow);
        Assert.Null(await RunLease.LiveHolderAsync(store, runId));
        await using var lease = await RunLease.AcquireAsync(store, runId); // a killed run is resumable at once
    }

    [Fact]
    public async Task ALeaseFromAnotherMachineCountsUntilItsTimeToLivePasses()
    {
        var store = Open("local");
        string runId = NewRunId();
        await WriteLeaseAsync(store, runId, "some-other-host", 4242, 1, DateTimeOffset.UtcNow);
        var e = await Assert.ThrowsAsync<RunBusyException>(() => RunLease.AcquireAsync(store, runId));
        Assert.Contains("process 4242 on some-other-host", e.Message);

        await WriteLeaseAsync(store, runId, "some-other-host", 4242, 1,
            DateTimeOffset.UtcNow - RunLease.TimeToLive - TimeSpan.FromSeconds(1));
        await using var lease = await RunLease.AcquireAsync(store, runId);
    }

    [Fact]
    public async Task ADamagedLeaseFileIsTakenOver()
    {
        var store = Open("local");
        string runId = NewRunId();
        await store.WriteAsync(RunPaths.Lease(runId), "{not json"u8.ToArray());
        await using var lease = await RunLease.AcquireAsync(store, runId);
    }
}
