using System.Diagnostics;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// `scalegrow grow --engine azure-storage`: the orchestration's history lives in Azurite, so a process killed in the
/// middle of a run picks it up again when started with the same run id — without redoing completed steps.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class CrashResumeTests(AzuriteFixture azurite)
{
    internal static string CliDll()
    {
        // The CLI is built with the test project (project reference), in the same configuration.
        string configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}")
            ? "Release" : "Debug";
        var dll = Path.Combine(RepositoryRoot.Find(), "cli", "ScaleGrow.Cli", "bin", configuration, "net10.0", "scalegrow.dll");
        Assert.True(File.Exists(dll), $"{dll} not built");
        return dll;
    }

    private Process Start(string specPath, string runId, string hub, string outDir)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { CliDll(), "grow", "--spec", specPath, "--engine", "azure-storage", "--store",
                     azurite.ConnectionString, "--run-id", runId, "--task-hub", hub, "--out", outDir, "--json" })
            info.ArgumentList.Add(a);
        info.Environment["CI"] = "true";
        var p = Process.Start(info)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        return p;
    }

    [Fact]
    public async Task AKilledRunContinuesWhereItWasWithoutRedoingCompletedSteps()
    {
        var store = new BlobArtifactStore(azurite.ConnectionString);
        string runId = $"crash-{Guid.NewGuid():N}"[..20];
        string hub = $"crash{Guid.NewGuid():N}"[..16];
        var dir = Directory.CreateTempSubdirectory("scalegrow-crash-");
        string specPath = Path.Combine(dir.FullName, "spec.json");
        File.WriteAllText(specPath, OrchestrationTestKit.TinyGrowth(maxEpochs: 6).ToJson());

        using (var first = Start(specPath, runId, hub, dir.FullName))
        {
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while ((await new RunJournal(store, runId).EntriesAsync()).All(e => (string?)e["kind"] != "state"))
            {
                Assert.False(first.HasExited, $"the first process ended early (exit {(first.HasExited ? first.ExitCode : 0)})");
                Assert.True(DateTime.UtcNow < deadline, "no growth cycle completed in three minutes");
                await Task.Delay(200);
            }
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
        var before = await new RunJournal(store, runId).EntriesAsync();
        Assert.DoesNotContain(before, e => (string?)e["kind"] == "evaluate");

        using var second = Start(specPath, runId, hub, dir.FullName);
        string stdout = await second.StandardOutput.ReadToEndAsync();
        Assert.True(second.WaitForExit(TimeSpan.FromMinutes(4)), "the restarted run did not finish");
        Assert.Equal(0, second.ExitCode);
        var result = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        Assert.Equal(runId, (string?)result["runId"]);

        var after = await new RunJournal(store, runId).EntriesAsync();
        Assert.Contains(after, e => (string?)e["kind"] == "evaluate");
        Assert.Equal(7, after.Count(e => (string?)e["kind"] == "epoch"));   // 6 + 1 fine-tuning, each once
        // Every step completed before the kill kept its original record: it was not run again.
        foreach (var e in before.Where(e => (string?)e["kind"] is "growth" or "state" or "epoch" or "initialize"))
        {
            var same = after.Single(a => (string?)a["key"] == (string?)e["key"]);
            Assert.Equal((string?)e["writtenAt"], (string?)same["writtenAt"]);
        }
        Assert.True(File.Exists(Path.Combine(dir.FullName, "fused.safetensors")));
    }
}
