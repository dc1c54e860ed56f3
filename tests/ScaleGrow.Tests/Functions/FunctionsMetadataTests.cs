using System.Text.Json;
using ScaleGrow.Orchestration;
using ScaleGrow.Runs;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Functions;

public class FunctionsMetadataTests
{
    /// <summary>The Functions SDK writes functions.metadata at build time; every trigger must be in it.</summary>
    [Fact]
    public void GeneratedMetadataListsEveryTrigger()
    {
        var root = RepositoryRoot.Find();
        var candidates = Directory.GetFiles(Path.Combine(root, "functions", "ScaleGrow.Functions", "bin"),
            "functions.metadata", SearchOption.AllDirectories);
        Assert.NotEmpty(candidates);
        var newest = candidates.OrderByDescending(File.GetLastWriteTimeUtc).First();
        using var doc = JsonDocument.Parse(File.ReadAllText(newest));
        var triggers = doc.RootElement.EnumerateArray().ToDictionary(
            f => f.GetProperty("name").GetString()!,
            f => f.GetProperty("bindings").EnumerateArray().First(b => b.GetProperty("direction").GetString() == "In"));
        string TypeOf(string name) => triggers[name].GetProperty("type").GetString()!;
        foreach (var orchestrator in new[] { TaskNames.GrowthRun, TaskNames.QuantizeUpload, TaskNames.SweepRun })
            Assert.Equal("orchestrationTrigger", TypeOf(orchestrator));
        // Every activity of the table (the one every host registers from) has its trigger.
        var table = ActivityTable.For(new RunSteps(new LocalFolderArtifactStore(Path.GetTempPath())),
            new UploadSteps(new LocalFolderArtifactStore(Path.GetTempPath())),
            new ScaleGrow.Sweeps.SweepSteps(new LocalFolderArtifactStore(Path.GetTempPath())));
        Assert.Equal(21, table.Activities.Count);
        foreach (var activity in table.Activities.Select(a => a.Name))
            Assert.Equal("activityTrigger", TypeOf(activity));
        var http = new Dictionary<string, (string Route, string Method)>
        {
            ["StartRun"] = ("runs", "post"), ["ListRuns"] = ("runs", "get"), ["GetRun"] = ("runs/{id}", "get"),
            ["StopRun"] = ("runs/{id}/stop", "post"), ["ResumeRun"] = ("runs/{id}/resume", "post"),
            ["DeleteRun"] = ("runs/{id}", "delete"),
            ["StartSweep"] = ("sweeps", "post"), ["GetSweep"] = ("sweeps/{id}", "get"),
            ["StopSweep"] = ("sweeps/{id}/stop", "post"), ["ResumeSweep"] = ("sweeps/{id}/resume", "post"),
            ["DeleteSweep"] = ("sweeps/{id}", "delete"),
        };
        foreach (var (name, (route, method)) in http)
        {
            Assert.Equal("httpTrigger", TypeOf(name));
            Assert.Equal(route, triggers[name].GetProperty("route").GetString());
            Assert.Equal("Function", triggers[name].GetProperty("authLevel").GetString());
            Assert.Contains(method, triggers[name].GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        }
        Assert.Equal("blobTrigger", TypeOf("QuantizeOnUpload"));
        Assert.Equal("uploads/{name}", triggers["QuantizeOnUpload"].GetProperty("path").GetString());
        Assert.Equal("EventGrid", triggers["QuantizeOnUpload"].GetProperty("source").GetString());
    }
}
