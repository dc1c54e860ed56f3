using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using ScaleGrow.Storage;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IArtifactStore"/> promises, run against each real store (local folder, Azurite
/// blobs, the caching decorator). Each test works in a fresh container, so tests never see each other's artifacts.
/// </summary>
public abstract class ArtifactStoreContractTests : IAsyncLifetime
{
    /// <summary>The store under test.</summary>
    protected abstract IArtifactStore Store { get; }

    /// <summary>Another, independent client of the same storage: another worker, another process.</summary>
    protected abstract IArtifactStore OpenOtherWriter();

    /// <summary>How many overwrites the atomicity test performs (fewer where each costs an HTTP round trip).</summary>
    protected virtual int OverwriteRounds => 40;

    /// <summary>A container of this test only.</summary>
    protected string Container { get; } = "t" + Guid.NewGuid().ToString("N")[..24];

    protected string P(string name) => $"{Container}/{name}";

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    protected async Task<List<ArtifactInfo>> List(string prefix, IArtifactStore? store = null)
    {
        var found = new List<ArtifactInfo>();
        await foreach (var info in (store ?? Store).ListAsync(prefix)) found.Add(info);
        return found;
    }

    [Fact]
    public async Task AVersionOpenedByItsETagIsReadWholeOrNotAtAllWhenTheArtifactIsReplaced()
    {
        // Larger than the blob store's 4 MiB read range, so the rest of the stream is fetched after the overwrite.
        var first = RandomBytes(3 * BlobArtifactStore.ReadChunkBytes, 11);
        var info = await Store.WriteAsync(P("uploads/big.safetensors"), first);
        await using (var stream = await Store.OpenVersionAsync(info.Path, info.ETag))
        {
            Assert.True(stream.CanSeek);
            Assert.Equal(first.Length, stream.Length);
            var head = new byte[1000];
            stream.ReadExactly(head);
            Assert.Equal(first[..1000], head);
            await OpenOtherWriter().WriteAsync(info.Path, RandomBytes(first.Length, 12));
            // The store either keeps serving the version it opened or refuses; it never hands out the new bytes.
            var rest = new byte[first.Length - 1000];
            try
            {
                stream.ReadExactly(rest);
                Assert.Equal(first[1000..], rest);
            }
            catch (ArtifactConflictException)
            {
            }
        }
        await Assert.ThrowsAsync<ArtifactConflictException>(() => Store.OpenVersionAsync(info.Path, info.ETag));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.OpenVersionAsync(P("uploads/none"), info.ETag));
    }

    [Fact]
    public async Task WrittenBytesReadBackWithTheInfoOfTheWrite()
    {
        var content = RandomBytes(10_000, 1);
        var before = DateTimeOffset.UtcNow.AddMinutes(-1);
        var written = await Store.WriteAsync(P("runs/r1/steps/00003/model.safetensors"), content);

        Assert.Equal(P("runs/r1/steps/00003/model.safetensors"), written.Path);
        Assert.Equal(content.Length, written.Length);
        Assert.False(string.IsNullOrEmpty(written.ETag));
        Assert.InRange(written.LastModified, before, DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(content, await Store.ReadAllBytesAsync(written.Path));
        var read = await Store.ReadAsync(written.Path);
        Assert.Equal(content, read.Bytes.ToArray());
        Assert.Equal(written.ETag, read.Info.ETag);
        var info = await Store.GetInfoAsync(written.Path);
        Assert.NotNull(info);
        Assert.Equal(written.ETag, info.ETag);
        Assert.Equal(content.Length, info.Length);
        Assert.True(await Store.ExistsAsync(written.Path));
        await using var stream = await Store.OpenReadAsync(written.Path);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
    }

    [Fact]
    public async Task StreamWritesStoreFromTheCurrentPositionAndAcceptUnseekableStreams()
    {
        var content = RandomBytes(300_000, 2);
        var seekable = new MemoryStream(content) { Position = 1000 };
        var written = await Store.WriteAsync(P("a/seekable.bin"), seekable);
        Assert.Equal(content.Length - 1000, written.Length);
        Assert.Equal(content[1000..], await Store.ReadAllBytesAsync(P("a/seekable.bin")));

        var forwardOnly = await Store.WriteAsync(P("a/forward.bin"), new NonSeekableStream(content, maxRead: 7000));
        Assert.Equal(content.Length, forwardOnly.Length);
        Assert.Equal(content, await Store.ReadAllBytesAsync(P("a/forward.bin")));
        Assert.Equal(forwardOnly.ETag, (await Store.GetInfoAsync(P("a/forward.bin")))!.ETag);

        var empty = await Store.WriteAsync(P("a/empty.bin"), ReadOnlyMemory<byte>.Empty);
        Assert.Equal(0, empty.Length);
        Assert.Empty(await Store.ReadAllBytesAsync(P("a/empty.bin")));
    }

    [Fact]
    public async Task MetadataTravelsWithItsVersionAndIsReplacedByTheNextWrite()
    {
        var metadata = new Dictionary<string, string> { ["step"] = "3", ["kind"] = "model_checkpoint" };
        var written = await Store.WriteAsync(P("m/model.bin"), Encoding.UTF8.GetBytes("weights"),
            new ArtifactWriteOptions { Metadata = metadata });
        Assert.Equal(metadata, written.Metadata);

        var info = await Store.GetInfoAsync(P("m/model.bin"));
        Assert.Equal(metadata, info!.Metadata);
        Assert.Equal("3", info.Metadata["STEP"]);
        Assert.Equal(metadata, (await Store.ReadAsync(P("m/model.bin"))).Info.Metadata);
        Assert.Equal(metadata, Assert.Single(await List(P("m/"))).Metadata);

        await Store.WriteAsync(P("m/model.bin"), Encoding.UTF8.GetBytes("weights 2"));
        Assert.Empty((await Store.GetInfoAsync(P("m/model.bin")))!.Metadata);
        Assert.Empty((await Store.ReadAsync(P("m/model.bin"))).Info.Metadata);
    }

    [Theory]
    [InlineData("bad-name", "x")]
    [InlineData("1st", "x")]
    [InlineData("note", "line\nbreak")]
    [InlineData("note", "caf\u00e9")]
    public async Task InvalidMetadataIsRefusedBeforeAnythingIsWritten(string name, string value)
    {
        var options = new ArtifactWriteOptions { Metadata = new Dictionary<string, string> { [name] = value } };
        var e = await Assert.ThrowsAsync<InvalidSpecException>(() =>
            Store.WriteAsync(P("m/bad.bin"), new byte[] { 1 }, options));
        Assert.Contains(P("m/bad.bin"), e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(await Store.ExistsAsync(P("m/bad.bin")));
    }

    [Fact]
    public async Task ListReturnsTheArtifactsUnderAPrefixSortedByPath()
    {
        string[] names = ["a/b/2", "ab/x", "a/c", "a/b/10", "b", "a/b/1"];
        foreach (string name in names) await Store.WriteAsync(P(name), Encoding.UTF8.GetBytes(name));

        Assert.Equal([P("a/b/1"), P("a/b/10"), P("a/b/2"), P("a/c")], (await List(P("a/"))).Select(i => i.Path));
        Assert.Equal([P("a/b/1"), P("a/b/10"), P("a/b/2"), P("a/c"), P("ab/x")],
            (await List(P("a"))).Select(i => i.Path));
        Assert.Equal([P("a/b/1"), P("a/b/10")], (await List(P("a/b/1"))).Select(i => i.Path));
        Assert.Equal(names.Order(StringComparer.Ordinal).Select(P), (await List(Container)).Select(i => i.Path));
        Assert.Equal(names.Order(StringComparer.Ordinal).Select(P), (await List(Container + "/")).Select(i => i.Path));
        Assert.Empty(await List(P("zzz/")));
        Assert.Empty(await List("t" + Guid.NewGuid().ToString("N")[..24] + "/"));

        foreach (var listed in await List(Container))
        {
            var info = await Store.GetInfoAsync(listed.Path);
            Assert.Equal(info!.ETag, listed.ETag);
            Assert.Equal(Encoding.UTF8.GetByteCount(listed.Path[(Container.Length + 1)..]), listed.Length);
        }
    }

    [Fact]
    public async Task DeleteRemovesTheArtifactAndSaysWhetherOneExisted()
    {
        await Store.WriteAsync(P("d/x.json"), "{}"u8.ToArray());
        await Store.WriteAsync(P("d/y.json"), "{}"u8.ToArray());
        Assert.True(await Store.DeleteAsync(P("d/x.json")));
        Assert.False(await Store.DeleteAsync(P("d/x.json")));
        Assert.False(await Store.DeleteAsync("t" + Guid.NewGuid().ToString("N")[..24] + "/never.json"));
        Assert.Null(await Store.GetInfoAsync(P("d/x.json")));
        Assert.Equal([P("d/y.json")], (await List(P("d/"))).Select(i => i.Path));
    }

    [Fact]
    public async Task CopyDuplicatesContentAndMetadataAndKeepsTheSource()
    {
        var metadata = new Dictionary<string, string> { ["reason"] = "bad_header" };
        var content = RandomBytes(50_000, 3);
        await Store.WriteAsync(P("uploads/m.safetensors"), content, new ArtifactWriteOptions { Metadata = metadata });
        await Store.WriteAsync(P("kept/m.safetensors"), "old"u8.ToArray());

        var copied = await Store.CopyAsync(P("uploads/m.safetensors"), P("kept/m.safetensors"));

        Assert.Equal(P("kept/m.safetensors"), copied.Path);
        Assert.Equal(content.Length, copied.Length);
        Assert.Equal(metadata, copied.Metadata);
        Assert.Equal(content, await Store.ReadAllBytesAsync(P("kept/m.safetensors")));
        Assert.Equal(metadata, (await Store.GetInfoAsync(P("kept/m.safetensors")))!.Metadata);
        Assert.Equal(copied.ETag, (await Store.GetInfoAsync(P("kept/m.safetensors")))!.ETag);
        Assert.Equal(content, await Store.ReadAllBytesAsync(P("uploads/m.safetensors")));
    }

    [Fact]
    public async Task MoveRelocatesContentAndMetadataAndRemovesTheSource()
    {
        var metadata = new Dictionary<string, string> { ["reason"] = "not_safetensors" };
        var content = RandomBytes(70_000, 4);
        await Store.WriteAsync(P("uploads/u1/model.bin"), content, new ArtifactWriteOptions { Metadata = metadata });
        var replaced = await Store.WriteAsync(P("rejected/u1/model.bin"), "older rejection"u8.ToArray());

        var moved = await Store.MoveAsync(P("uploads/u1/model.bin"), P("rejected/u1/model.bin"));

        Assert.Equal(P("rejected/u1/model.bin"), moved.Path);
        Assert.NotEqual(replaced.ETag, moved.ETag);
        Assert.Equal(metadata, moved.Metadata);
        Assert.Null(await Store.GetInfoAsync(P("uploads/u1/model.bin")));
        Assert.Empty(await List(P("uploads/")));
        var info = await Store.GetInfoAsync(P("rejected/u1/model.bin"));
        Assert.Equal(moved.ETag, info!.ETag);
        Assert.Equal(metadata, info.Metadata);
        Assert.Equal(content, await Store.ReadAllBytesAsync(P("rejected/u1/model.bin")));
    }

    [Fact]
    public async Task MissingArtifactsAreReportedAsNotFoundNamingThePath()
    {
        string missing = P("runs/nope/spec.json");
        Assert.Null(await Store.GetInfoAsync(missing));
        Assert.False(await Store.ExistsAsync(missing));
        var errors = new List<ArtifactNotFoundException>
        {
            await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync(missing)),
            await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.ReadAllBytesAsync(missing)),
            await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.ReadAsync(missing)),
            await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.CopyAsync(missing, P("x/y"))),
            await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.MoveAsync(missing, P("x/y"))),
        };
        foreach (var e in errors)
        {
            Assert.IsAssignableFrom<ScaleGrowException>(e);
            Assert.Equal(missing, e.Path);
            Assert.Equal($"artifact '{missing}' not found", e.Message);
        }
        Assert.False(await Store.ExistsAsync(P("x/y")));
    }

    [Fact]
    public async Task IfNotExistsWritesOnceAndThenConflicts()
    {
        string path = P("runs/r/spec.json");
        var first = await Store.WriteAsync(path, "first"u8.ToArray(), ArtifactWriteOptions.IfNotExists);
        var e = await Assert.ThrowsAsync<ArtifactConflictException>(() =>
            Store.WriteAsync(path, "second"u8.ToArray(), ArtifactWriteOptions.IfNotExists));
        Assert.Contains(path, e.Message);
        await Assert.ThrowsAsync<ArtifactConflictException>(() =>
            Store.WriteAsync(path, new MemoryStream("third"u8.ToArray()), ArtifactWriteOptions.IfNotExists));
        Assert.Equal("first"u8.ToArray(), await Store.ReadAllBytesAsync(path));
        Assert.Equal(first.ETag, (await Store.GetInfoAsync(path))!.ETag);
    }

    [Fact]
    public async Task IfMatchWritesOnlyOverTheVersionItNames()
    {
        string path = P("runs/r/journal.json");
        var v1 = await Store.WriteAsync(path, "v1"u8.ToArray());
        var v2 = await Store.WriteAsync(path, "v2"u8.ToArray());

        var stale = await Assert.ThrowsAsync<ArtifactConflictException>(() =>
            Store.WriteAsync(path, "from v1"u8.ToArray(), ArtifactWriteOptions.IfMatch(v1.ETag)));
        Assert.Contains(path, stale.Message);
        Assert.Equal("v2"u8.ToArray(), await Store.ReadAllBytesAsync(path));

        var v3 = await Store.WriteAsync(path, "from v2"u8.ToArray(), ArtifactWriteOptions.IfMatch(v2.ETag));
        Assert.Equal("from v2"u8.ToArray(), await Store.ReadAllBytesAsync(path));
        Assert.Equal(v3.ETag, (await Store.GetInfoAsync(path))!.ETag);

        await Assert.ThrowsAsync<ArtifactConflictException>(() =>
            Store.WriteAsync(P("runs/r/absent.json"), "x"u8.ToArray(), ArtifactWriteOptions.IfMatch(v3.ETag)));
        Assert.False(await Store.ExistsAsync(P("runs/r/absent.json")));
    }

    [Fact]
    public async Task EveryWriteGetsANewETagEvenWithIdenticalBytesInOneMillisecond()
    {
        string path = P("e/same.bin");
        var tags = new List<string>();
        for (int i = 0; i < 25; i++)
        {
            var written = await Store.WriteAsync(path, "same bytes"u8.ToArray());
            Assert.Equal(written.ETag, (await Store.GetInfoAsync(path))!.ETag);
            tags.Add(written.ETag);
        }
        Assert.Equal(tags.Count, tags.Distinct().Count());
        // Deleting and writing again must not bring an old ETag back (caches key on it).
        await Store.DeleteAsync(path);
        var again = await Store.WriteAsync(path, "same bytes"u8.ToArray());
        Assert.DoesNotContain(again.ETag, tags);
    }

    public static TheoryData<string> InvalidPaths() => new()
    {
        "../x", "runs/../x", "runs/a/../../etc/passwd", "runs/./x", "runs//x", "/runs/x", "runs/x/",
        "runs\\x", "runs/a\\..\\b", "runs/a\u0000b", "runs/a\nb", "runs/a\u001fb", "runs", "", "Runs/x",
        "RUNS/x", "ru/x", "-runs/x", "runs-/x", "ru--ns/x", "r\u00fcns/x", "runs/x.",
        "runs/" + new string('a', 1100), "runs/" + string.Join('/', Enumerable.Repeat("abcdefghij", 100)),
        "runs/" + new string('b', 201), "runs/.~sg.t.x",
    };

    [Theory]
    [MemberData(nameof(InvalidPaths))]
    public async Task HostilePathsAreRefusedWithOneLineNamingThem(string path)
    {
        var errors = new[]
        {
            await Assert.ThrowsAsync<InvalidSpecException>(() => Store.WriteAsync(path, new byte[] { 1 })),
            await Assert.ThrowsAsync<InvalidSpecException>(() => Store.ReadAllBytesAsync(path)),
            await Assert.ThrowsAsync<InvalidSpecException>(() => Store.GetInfoAsync(path)),
            await Assert.ThrowsAsync<InvalidSpecException>(() => Store.DeleteAsync(path)),
            await Assert.ThrowsAsync<InvalidSpecException>(() => Store.CopyAsync(P("ok"), path)),
        };
        foreach (var e in errors)
        {
            Assert.StartsWith("artifact path '", e.Message);
            Assert.Contains(ArtifactPath.Printable(path), e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.DoesNotContain('\0', e.Message);
        }
    }

    [Theory]
    [InlineData("runs/../")]
    [InlineData("Runs/")]
    [InlineData("/runs")]
    [InlineData("runs//a")]
    public async Task HostileListPrefixesAreRefused(string prefix)
    {
        var e = await Assert.ThrowsAsync<InvalidSpecException>(() => List(prefix));
        Assert.Contains(prefix, e.Message);
    }

    [Fact]
    public async Task UnicodeNamesRoundTrip()
    {
        string path = P("uploads/模型/ünïcødé 🚀 (v2).safetensors");
        var written = await Store.WriteAsync(path, "ü"u8.ToArray());
        Assert.Equal(path, written.Path);
        Assert.Equal("ü"u8.ToArray(), await Store.ReadAllBytesAsync(path));
        Assert.Equal([path], (await List(P("uploads/"))).Select(i => i.Path));
    }

    [Fact]
    public async Task ACancelledCallDoesNothing()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Store.WriteAsync(P("c/x"), new MemoryStream(new byte[100]), cancellationToken: cancelled.Token));
        Assert.False(await Store.ExistsAsync(P("c/x")));
        Assert.Empty(await List(P("c/")));
    }

    /// <summary>
    /// A reader polling an artifact while a writer keeps replacing it (several MB, two alternating contents) only
    /// ever sees one whole content, and the ETag it gets with the bytes is the one written with exactly those bytes.
    /// </summary>
    [Fact]
    public async Task ReadersNeverSeeAPartOrAMixtureOfTwoVersions()
    {
        const int size = 4 * 1024 * 1024;
        var contents = new[] { RandomBytes(size, 10), RandomBytes(size, 11) };
        var hashes = contents.Select(c => Convert.ToHexString(SHA256.HashData(c))).ToArray();
        string path = P("runs/r/steps/00001/model.safetensors");
        var first = await Store.WriteAsync(path, contents[0]);
        var writtenHash = new ConcurrentDictionary<string, string> { [first.ETag] = hashes[0] };

        var reads = new ConcurrentBag<(string ETag, string Hash)>();
        var seen = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var reader = IArtifactStoreReader(OpenOtherWriter());
        var writer = Task.Run(async () =>
        {
            try
            {
                // At least OverwriteRounds writes, and more (up to 10×) while the readers have not yet been
                // scheduled: on a busy 2-core machine a fast local writer can finish before either reader starts.
                for (int round = 1; round <= OverwriteRounds ||
                     (reads.Count + seen.Count < 6 && round <= OverwriteRounds * 10); round++)
                {
                    var written = round % 2 == 0
                        ? await Store.WriteAsync(path, contents[round % 2])
                        : await Store.WriteAsync(path, new MemoryStream(contents[round % 2]));
                    writtenHash[written.ETag] = hashes[round % 2];
                }
            }
            finally
            {
                await stop.CancelAsync();
            }
        });
        await Task.WhenAll(writer, reader(), reader());

        Assert.True(reads.Count + seen.Count >= 6, $"only {reads.Count + seen.Count} reads overlapped the writes");
        Assert.All(seen, hash => Assert.Contains(hash, hashes));
        Assert.All(reads, read =>
        {
            Assert.Contains(read.Hash, hashes);
            Assert.True(writtenHash.TryGetValue(read.ETag, out var expected), $"ETag {read.ETag} was never written");
            Assert.Equal(expected, read.Hash);
        });

        Func<Task> IArtifactStoreReader(IArtifactStore other) => () => Task.Run(async () =>
        {
            int i = 0;
            while (!stop.IsCancellationRequested)
            {
                var store = i++ % 2 == 0 ? Store : other;
                var content = await store.ReadAsync(path);
                reads.Add((content.Info.ETag, Convert.ToHexString(SHA256.HashData(content.Bytes.Span))));
                await using var stream = await store.OpenReadAsync(path);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[81920];
                for (int n; (n = await stream.ReadAsync(buffer)) > 0;) hash.AppendData(buffer, 0, n);
                seen.Add(Convert.ToHexString(hash.GetHashAndReset()));
            }
        });
    }

    /// <summary>
    /// Many workers increment one counter with read-ETag then write-IfMatch, half through another client of the same
    /// storage: no update is lost, so the final value is the number of successful writes.
    /// </summary>
    [Fact]
    public async Task ConcurrentConditionalWritersLoseNoUpdate()
    {
        const int workers = 6, incrementsEach = 8;
        string path = P("runs/r/counter.txt");
        await Store.WriteAsync(path, "0"u8.ToArray(), ArtifactWriteOptions.IfNotExists);
        var other = OpenOtherWriter();
        int successes = 0, conflicts = 0;
        var tags = new ConcurrentBag<string>();

        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var store = w % 2 == 0 ? Store : other;
            for (int done = 0; done < incrementsEach;)
            {
                var current = await store.ReadAsync(path);
                int value = int.Parse(Encoding.UTF8.GetString(current.Bytes.Span));
                try
                {
                    var written = await store.WriteAsync(path, Encoding.UTF8.GetBytes((value + 1).ToString()),
                        ArtifactWriteOptions.IfMatch(current.Info.ETag));
                    tags.Add(written.ETag);
                    Interlocked.Increment(ref successes);
                    done++;
                }
                catch (ArtifactConflictException)
                {
                    Interlocked.Increment(ref conflicts);
                }
            }
        })));

        Assert.Equal(workers * incrementsEach, successes);
        Assert.Equal(successes.ToString(), Encoding.UTF8.GetString(await Store.ReadAllBytesAsync(path)));
        Assert.Equal(successes, tags.Distinct().Count());
    }
}
