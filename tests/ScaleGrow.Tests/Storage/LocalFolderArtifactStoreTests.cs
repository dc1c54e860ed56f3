using System.Text;
using ScaleGrow.Storage;

namespace ScaleGrow.Tests.Storage;

/// <summary>The store contract on a local folder, plus what only a folder has: plain files, hand-placed files,
/// sidecars and a crash between the sidecar and the content rename.</summary>
public sealed class LocalFolderArtifactStoreTests : ArtifactStoreContractTests
{
    private readonly string _root = Directory.CreateTempSubdirectory("scalegrow-store-").FullName;
    private readonly LocalFolderArtifactStore _store;

    public LocalFolderArtifactStoreTests()
    {
        _store = new LocalFolderArtifactStore(_root);
    }

    protected override IArtifactStore Store => _store;

    // A second store object on the same folder has its own in-process semaphores: only the lock files exclude it,
    // as they exclude another process.
    protected override IArtifactStore OpenOtherWriter() => new LocalFolderArtifactStore(_root);

    public override Task DisposeAsync()
    {
        Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    private string FileOf(string name) => Path.Combine(_root, Container, name);

    [Fact]
    public async Task ArtifactsArePlainFilesAndTheStoresOwnFilesStayOutOfLists()
    {
        var metadata = new Dictionary<string, string> { ["step"] = "1" };
        await Store.WriteAsync(P("runs/r/report.json"), "{\"ok\":true}"u8.ToArray(),
            new ArtifactWriteOptions { Metadata = metadata });

        Assert.Equal("{\"ok\":true}", await File.ReadAllTextAsync(FileOf("runs/r/report.json")));
        Assert.Equal(FileOf("runs/r/report.json"), _store.GetFilePath(P("runs/r/report.json")));
        var files = Directory.GetFiles(FileOf("runs/r")).Select(f => Path.GetFileName(f)).Order().ToArray();
        Assert.Equal([".~sg.m.report.json", "report.json"], files);
        Assert.Equal([P("runs/r/report.json")], (await List(Container)).Select(i => i.Path));
        Assert.Empty(Directory.GetFiles(_root, ".~sg.t.*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task AFileCopiedInByHandIsAnArtifactWithItsOwnETag()
    {
        Directory.CreateDirectory(FileOf("uploads"));
        await File.WriteAllBytesAsync(FileOf("uploads/by-hand.safetensors"), RandomBytes(1000, 5));

        var info = await Store.GetInfoAsync(P("uploads/by-hand.safetensors"));
        Assert.NotNull(info);
        Assert.Equal(1000, info.Length);
        Assert.Empty(info.Metadata);
        Assert.Equal([P("uploads/by-hand.safetensors")], (await List(P("uploads/"))).Select(i => i.Path));
        var replaced = await Store.WriteAsync(P("uploads/by-hand.safetensors"), "next"u8.ToArray(),
            ArtifactWriteOptions.IfMatch(info.ETag));
        Assert.NotEqual(info.ETag, replaced.ETag);
    }

    [Fact]
    public async Task EditingTheFileBehindTheStoresBackChangesItsETagAndDropsItsMetadata()
    {
        var metadata = new Dictionary<string, string> { ["step"] = "2" };
        var written = await Store.WriteAsync(P("runs/r/journal.json"), "[1]"u8.ToArray(),
            new ArtifactWriteOptions { Metadata = metadata });
        await File.WriteAllTextAsync(FileOf("runs/r/journal.json"), "[1,2]");

        var info = await Store.GetInfoAsync(P("runs/r/journal.json"));
        Assert.NotEqual(written.ETag, info!.ETag);
        Assert.Empty(info.Metadata);
        await Assert.ThrowsAsync<ArtifactConflictException>(() => Store.WriteAsync(P("runs/r/journal.json"),
            "[9]"u8.ToArray(), ArtifactWriteOptions.IfMatch(written.ETag)));
    }

    /// <summary>
    /// A crash after the new sidecar was renamed into place but before the content was leaves the old content: it
    /// must still show its own metadata and ETag, not the new version's.
    /// </summary>
    [Fact]
    public async Task AfterACrashBeforeTheContentRenameTheOldVersionKeepsItsOwnMetadata()
    {
        string path = P("runs/r/steps/00002/model.safetensors");
        var v1 = await Store.WriteAsync(path, "version one"u8.ToArray(),
            new ArtifactWriteOptions { Metadata = new Dictionary<string, string> { ["step"] = "1" } });
        string file = FileOf("runs/r/steps/00002/model.safetensors");
        var v1Time = File.GetLastWriteTimeUtc(file);
        await Store.WriteAsync(path, "version two"u8.ToArray(),
            new ArtifactWriteOptions { Metadata = new Dictionary<string, string> { ["step"] = "2" } });

        // Put version one's file back exactly as it was: the state the crash would have left.
        await File.WriteAllBytesAsync(file, "version one"u8.ToArray());
        File.SetLastWriteTimeUtc(file, v1Time);

        var info = await Store.GetInfoAsync(path);
        Assert.Equal(v1.ETag, info!.ETag);
        Assert.Equal("1", info.Metadata["step"]);
        var read = await Store.ReadAsync(path);
        Assert.Equal("1", read.Info.Metadata["step"]);
        Assert.Equal("version one", Encoding.UTF8.GetString(read.Bytes.Span));
    }

    [Fact]
    public async Task AFileAndAFolderOfTheSameNameAreRefused()
    {
        await Store.WriteAsync(P("a/b"), "file"u8.ToArray());
        var under = await Assert.ThrowsAsync<InvalidSpecException>(() => Store.WriteAsync(P("a/b/c"), "x"u8.ToArray()));
        Assert.Contains(P("a/b/c"), under.Message);
        Assert.Contains("'" + P("a/b") + "' is an artifact", under.Message);
        Assert.Null(await Store.GetInfoAsync(P("a/b/c")));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.ReadAllBytesAsync(P("a/b/c")));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.ReadAllBytesAsync(P("x")));

        await Store.WriteAsync(P("x/y/z"), "file"u8.ToArray());
        var over = await Assert.ThrowsAsync<InvalidSpecException>(() => Store.WriteAsync(P("x/y"), "x"u8.ToArray()));
        Assert.Contains("a folder of that name exists", over.Message);
        Assert.Null(await Store.GetInfoAsync(P("x/y")));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.ReadAllBytesAsync(P("x/y")));
        Assert.False(await Store.DeleteAsync(P("x/y")));
        Assert.Equal("file"u8.ToArray(), await Store.ReadAllBytesAsync(P("a/b")));
    }

    [Fact]
    public async Task AStreamOpenedBeforeAnOverwriteKeepsReadingItsVersion()
    {
        var first = RandomBytes(200_000, 6);
        await Store.WriteAsync(P("s/x.bin"), first);
        await using var stream = await Store.OpenReadAsync(P("s/x.bin"));
        var head = new byte[1000];
        await stream.ReadExactlyAsync(head);
        await Store.WriteAsync(P("s/x.bin"), RandomBytes(200_000, 7));
        await Store.DeleteAsync(P("s/x.bin"));
        using var rest = new MemoryStream();
        await stream.CopyToAsync(rest);
        Assert.Equal(first, head.Concat(rest.ToArray()).ToArray());
    }

    [Fact]
    public async Task AWriterHoldingThePathsLockMakesOthersWaitNotFail()
    {
        // A short lock timeout and a burst of writers on one path: every writer gets its turn.
        var store = new LocalFolderArtifactStore(_root, TimeSpan.FromSeconds(20));
        var other = new LocalFolderArtifactStore(_root, TimeSpan.FromSeconds(20));
        var writes = Enumerable.Range(0, 16).Select(i =>
            (i % 2 == 0 ? store : other).WriteAsync(P("l/busy.bin"), RandomBytes(20_000, i)));
        var written = await Task.WhenAll(writes);
        Assert.Equal(16, written.Select(w => w.ETag).Distinct().Count());
        Assert.Contains((await Store.GetInfoAsync(P("l/busy.bin")))!.ETag, written.Select(w => w.ETag));
    }

    [Fact]
    public void ARootThatIsAFileIsRefused()
    {
        string file = Path.Combine(_root, "not-a-folder");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<InvalidSpecException>(() => new LocalFolderArtifactStore(file));
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public async Task DeletingTheLastArtifactOfAFolderRemovesTheEmptyFoldersButNotTheContainer()
    {
        await Store.WriteAsync(P("runs/r/steps/00001/model.bin"), new byte[] { 1 });
        await Store.WriteAsync(P("runs/r/spec.json"), new byte[] { 2 });
        await Store.WriteAsync(P("runs/other/spec.json"), new byte[] { 3 });

        await Store.DeleteAsync(P("runs/r/steps/00001/model.bin"));
        Assert.False(Directory.Exists(FileOf("runs/r/steps")));   // empty folders used to stay behind (issue 16)
        Assert.True(Directory.Exists(FileOf("runs/r")));           // still holds spec.json
        await Store.DeleteAsync(P("runs/r/spec.json"));
        Assert.False(Directory.Exists(FileOf("runs/r")));
        Assert.True(File.Exists(FileOf("runs/other/spec.json")));
        await Store.DeleteAsync(P("runs/other/spec.json"));
        Assert.True(Directory.Exists(Path.Combine(_root, Container)));
        // A write into a removed folder makes it again.
        await Store.WriteAsync(P("runs/r/steps/00002/model.bin"), new byte[] { 4 });
        Assert.Equal(new byte[] { 4 }, await Store.ReadAllBytesAsync(P("runs/r/steps/00002/model.bin")));
    }

    [Fact]
    public async Task AReadRacingADeleteAndRewriteSeesTheArtifactOrNotFoundNeverARawFileError()
    {
        // The RunLease flake: a read whose open found no file while another writer was renaming one into place got a
        // raw FileNotFoundException (the store re-checked File.Exists after the failed open, and by then it existed).
        var store = new LocalFolderArtifactStore(_root);
        string path = P("race/lease.json");
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var writer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await store.WriteAsync(path, new byte[] { 7 });
                await store.DeleteAsync(path);
            }
        });
        int found = 0, absent = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                Assert.Equal(new byte[] { 7 }, await store.ReadAllBytesAsync(path));
                found++;
            }
            catch (ArtifactNotFoundException)
            {
                absent++;
            }
        }
        await writer;
        Assert.True(found + absent > 0);
    }

    [Fact]
    public async Task WritesRacingDeletesOfTheSameFolderAllLand()
    {
        // Deleting a folder's last artifact removes the folder; a writer that just made it makes it again.
        var store = new LocalFolderArtifactStore(_root);
        for (int round = 0; round < 30; round++)
        {
            string a = P($"race/{round % 3}/a.bin"), b = P($"race/{round % 3}/b.bin");
            await store.WriteAsync(a, new byte[] { 1 });
            await Task.WhenAll(store.DeleteAsync(a), store.WriteAsync(b, new byte[] { 2 }));
            Assert.Equal(new byte[] { 2 }, await store.ReadAllBytesAsync(b));
            await store.DeleteAsync(b);
        }
    }
}
