using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Cli;

/// <summary>
/// SIGTERM — what <c>kill</c> and a container platform scaling in send — to `scalegrow grow` in the middle of growth
/// stops the run gracefully within seconds: it fuses, evaluates and reports the model it has, and exits 0. It used to
/// keep the process busy for minutes (issue 16).
/// </summary>
public class StopSignalTests
{
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public async Task SigtermDuringGrowthEndsTheRunGracefullyWithAReport()
    {
        var dir = Directory.CreateTempSubdirectory("scalegrow-sigterm-");
        try
        {
            string storeDir = Path.Combine(dir.FullName, "store"), outDir = Path.Combine(dir.FullName, "out");
            string specPath = Path.Combine(dir.FullName, "spec.json");
            File.WriteAllText(specPath, OrchestrationTestKit.TinyGrowth(maxEpochs: 40, fineTune: 5).ToJson());
            const string runId = "sigterm-run";
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in new[] { CrashResumeTests.CliDll(), "grow", "--spec", specPath, "--store", storeDir,
                         "--run-id", runId, "--out", outDir, "--json" })
                info.ArgumentList.Add(a);
            info.Environment["CI"] = "true";
            using var process = Process.Start(info)!;
            var stderr = new System.Text.StringBuilder();
            process.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            string Stderr() { lock (stderr) return stderr.ToString(); } // appended to from another thread
            process.BeginErrorReadLine();
            var stdout = process.StandardOutput.ReadToEndAsync();

            var store = ArtifactStores.Open(storeDir);
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (!File.Exists(Path.Combine(storeDir, "runs", runId, "journal.json")) ||
                   (await new RunJournal(store, runId).EntriesAsync()).Count(e => (string?)e["kind"] == "growth") < 2)
            {
                Assert.False(process.HasExited, $"the run ended before its second growth (exit {(process.HasExited ? process.ExitCode : 0)}): {Stderr()}");
                Assert.True(DateTime.UtcNow < deadline, "no second growth in three minutes");
                await Task.Delay(100);
            }
            var signalled = Stopwatch.StartNew();
            Assert.Equal(0, Kill(process.Id, 15));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(90)), $"still running 90 s after SIGTERM: {Stderr()}");
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {Stderr()}");
            var result = JsonNode.Parse((await stdout).Trim().Split('\n')[^1])!;
            Assert.StartsWith("stop requested", (string?)result["stopReason"]);
            Assert.True((int)result["epochs"]! < 40, $"{result["epochs"]} epochs: the signal did not shorten the run");
            Assert.True(File.Exists(Path.Combine(outDir, "fused.safetensors")));
            Assert.True(File.Exists(Path.Combine(outDir, "report.json")));
            Assert.Contains("SIGTERM", Stderr());
            Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(90));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
