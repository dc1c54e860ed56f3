using System.Text.Json.Nodes;
using ScaleGrow.Growth;
using ScaleGrow.Runs;
using ScaleGrow.Storage;

namespace ScaleGrow.Tests.Runs;

public class RunJournalEntryTests
{
    [Fact]
    public void TypedEntriesKeepTheJournalsFileFormat()
    {
        var growth = new GrowthEntry(3, 2, new GrowthAction
        {
            Kind = GrowthKind.Depth, Block = 1, ArchBefore = "VGG-0-0-0", ArchAfter = "VGG-0-1-0", Reason = "r",
        }, 1200, 1100, "cpu");
        var json = RunJournal.ToJson(growth);
        Assert.Equal("kind", json.First().Key);
        Assert.Equal("growth", (string?)json["kind"]);
        Assert.Equal(3, (int)json["step"]!);
        Assert.Equal(2, (int)json["epoch"]!);
        Assert.Equal("depth", (string?)json["action"]!["kind"]);
        Assert.Equal("VGG-0-1-0", (string?)json["action"]!["archAfter"]);
        Assert.Equal(1100, (long)json["parametersFused"]!);
        Assert.Equal("cpu", (string?)json["device"]);

        var importance = RunJournal.ToJson(new ImportanceEntry(2, [[0, 0.8], [1, 0.75]],
            new Dictionary<string, double> { ["L4"] = 0.5 }, "cpu"));
        Assert.Equal("[[0,0.8],[1,0.75]]", importance["blocks"]!.ToJsonString());
        Assert.Equal(0.5, (double)importance["layers"]!["L4"]!);

        var back = RunJournal.Read(json, RunStepsJson.Default.RunJournalEntry, "j");
        var typed = Assert.IsType<GrowthEntry>(back);
        Assert.Equal(growth.Action.ArchAfter, typed.Action.ArchAfter);
        Assert.Equal(growth with { Action = typed.Action }, typed);
    }

    [Fact]
    public async Task AJournalWrittenTypedReadsBackTypedAndUnknownKindsStayReadable()
    {
        var dir = Directory.CreateTempSubdirectory("sg-journal-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var journal = new RunJournal(store, "typed");
            await journal.UpsertAsync("fuse", new FuseEntry("runs/typed/final/fused.safetensors", 99, "cpu"));
            await journal.UpsertAsync("future", new JsonObject { ["kind"] = "from-a-newer-version", ["x"] = 1 });
            var entries = await journal.RunEntriesAsync();
            var fuse = Assert.IsType<FuseEntry>(entries[0]);
            Assert.Equal(99, fuse.ParametersFused);
            Assert.Equal("fuse", fuse.Key);
            Assert.NotNull(fuse.WrittenAt);
            Assert.Equal(typeof(RunJournalEntry), entries[1].GetType());
            Assert.Equal("future", entries[1].Key);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AMalformedEntryIsAOneLineErrorNamingItsKeyAndKind()
    {
        var dir = Directory.CreateTempSubdirectory("sg-journal-");
        try
        {
            var store = new LocalFolderArtifactStore(dir.FullName);
            var journal = new RunJournal(store, "bad");
            await journal.UpsertAsync("epoch-00001", new JsonObject { ["kind"] = "epoch", ["epoch"] = "one" });
            var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => journal.RunEntriesAsync());
            Assert.StartsWith("runs/bad/journal.json: journal entry 'epoch-00001' is not a valid epoch entry", e.Message);
            Assert.DoesNotContain('\n', e.Message);
            await journal.UpsertAsync("epoch-00001", new JsonObject { ["kind"] = 7 });
            // A kind that is not even a string is no kind this version knows: a plain entry, not a crash.
            Assert.Equal(typeof(RunJournalEntry), Assert.Single(await journal.RunEntriesAsync()).GetType());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
