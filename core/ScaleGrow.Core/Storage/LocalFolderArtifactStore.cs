using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ScaleGrow.Storage;

/// <summary>
/// An artifact store in a local folder: artifact <c>runs/r1/spec.json</c> is the plain file
/// <c>{root}/runs/r1/spec.json</c>, so results can be opened with any tool. Used by the local <c>scalegrow</c> command.
/// </summary>
/// <remarks>
/// <para><b>Atomic writes.</b> Content goes to a temporary file in the target's own folder (same file system), is
/// flushed to disk (fsync), then renamed over the target; rename replaces the directory entry atomically, so a reader
/// opens either the old file or the new one, and a reader that has a file open keeps reading its version.</para>
/// <para><b>ETag.</b> Derived from the file itself: its modification time (100 ns ticks) and length. Under the path's
/// lock every write stamps the new file's modification time strictly later than the file it replaces (the clock, or
/// the previous stamp plus one tick when the clock has not moved), so the ETag changes on every write even within
/// one millisecond and with identical bytes, no sidecar has to agree with the content for the ETag to be right, and a
/// reader holding an open file knows the ETag of exactly what it reads. A file copied in by hand simply gets the ETag
/// of its time and length. (A tool that replaces content while restoring the old time and length defeats this.)</para>
/// <para><b>Metadata.</b> Kept in a hidden sidecar next to the file (<c>.~sg.m.{name}</c>), written atomically
/// before the content is renamed into place. The sidecar holds the metadata of the new version and of the version it
/// replaces, each keyed by that version's (time, length), so whichever file a reader sees — even after a crash
/// between the two renames — it finds its own metadata or none, never another version's.</para>
/// <para><b>Concurrency.</b> Writes, deletes and moves of a path hold an exclusive lock: one of 256 lock files under
/// <c>{root}/.scalegrow/locks</c> chosen by a hash of the path, opened with <see cref="FileShare.None"/> (an
/// advisory <c>flock</c> on Unix, a sharing lock on Windows) so threads and processes on this machine exclude each
/// other, plus an in-process semaphore so threads wait without polling. Conditions are checked under that lock,
/// against the file as it is then. Readers take no lock.</para>
/// <para>Names starting with <c>.~sg.</c> are the store's temporary and sidecar files; they never appear in
/// <see cref="ListAsync"/>. Temporary files of a process killed mid-write stay behind, invisible, until removed by
/// hand. The folder must be one local file system (network file systems may not honour locks or atomic rename).
/// A folder cannot hold a file and a folder of the same name, so <c>c/a</c> and <c>c/a/b</c> cannot both exist here
/// (the blob store allows it); writing one over the other throws <see cref="InvalidSpecException"/>.</para>
/// </remarks>
public sealed class LocalFolderArtifactStore : IArtifactStore
{
    private const int LockStripes = 256;
    private const string TempPrefix = ArtifactPath.ReservedSegmentPrefix + "t.";
    private const string MetaPrefix = ArtifactPath.ReservedSegmentPrefix + "m.";
    private const int CopyBufferBytes = 1 << 20;

    private readonly string _root;
    private readonly string _lockFolder;
    private readonly SemaphoreSlim[] _stripes;
    private readonly ILogger _logger;

    // Smallest modification-time step the file system keeps, in ticks; learned on the first write that loses
    // precision (ext4, XFS, APFS, NTFS and tmpfs keep 100 ns; FAT keeps 2 s).
    private long _timeGranularity = 1;

    /// <summary>Opens (and creates if needed) a store rooted at <paramref name="rootDirectory"/>.</summary>
    /// <param name="lockTimeout">How long a write waits for another writer of the same path before it fails with
    /// <see cref="ArtifactStoreUnavailableException"/> (default 2 minutes).</param>
    public LocalFolderArtifactStore(string rootDirectory, TimeSpan? lockTimeout = null, ILogger? logger = null)
    {
        if (string.IsNullOrWhiteSpace(rootDirectory))
            throw new InvalidSpecException("local artifact store: the root folder is empty");
        _root = Path.GetFullPath(rootDirectory);
        if (File.Exists(_root))
            throw new InvalidSpecException($"local artifact store: '{_root}' is a file, expected a folder");
        _lockFolder = Path.Combine(_root, ".scalegrow", "locks");
        Directory.CreateDirectory(_lockFolder);
        _stripes = Enumerable.Range(0, LockStripes).Select(_ => new SemaphoreSlim(1, 1)).ToArray();
        LockTimeout = lockTimeout ?? TimeSpan.FromMinutes(2);
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The store's root folder (absolute).</summary>
    public string RootDirectory => _root;

    /// <summary>How long a write waits for the lock of its path.</summary>
    public TimeSpan LockTimeout { get; }

    /// <summary>The file that holds the artifact at <paramref name="path"/> (whether or not it exists).</summary>
    public string GetFilePath(string path)
    {
        var (container, name) = ArtifactPath.Split(path);
        return Path.Combine(_root, container, name.Replace('/', Path.DirectorySeparatorChar));
    }

    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken cancellationToken = default)
    {
        string file = GetFilePath(path);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(ReadInfo(path, file));
    }

    public async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        await GetInfoAsync(path, cancellationToken).ConfigureAwait(false) is not null;

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        string file = GetFilePath(path);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(OpenFile(path, file));
    }

    public Task<Stream> OpenVersionAsync(string path, string eTag, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(eTag);
        string file = GetFilePath(path);
        cancellationToken.ThrowIfCancellationRequested();
        // Writers rename a new file over the name, so an open handle keeps reading the version it opened.
        var (stream, info) = OpenVersion(path, file);
        if (info.ETag == eTag) return Task.FromResult<Stream>(stream);
        stream.Dispose();
        throw new ArtifactConflictException(path, $"has ETag {info.ETag}, not the expected {eTag} (replaced since)");
    }

    public async Task<ArtifactContent> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        string file = GetFilePath(path);
        var (stream, info) = OpenVersion(path, file);
        await using (stream.ConfigureAwait(false))
        {
            if (info.Length > Array.MaxLength)
                throw new ArtifactStoreException(path,
                    $"artifact '{ArtifactPath.Printable(path)}' has {info.Length} bytes, too many to read into " +
                    "memory; use OpenReadAsync");
            var bytes = new byte[info.Length];
            await stream.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            return new ArtifactContent(info, bytes);
        }
    }

    public async Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) =>
        (await ReadAsync(path, cancellationToken).ConfigureAwait(false)).Bytes.ToArray();

    public async Task<ArtifactInfo> WriteAsync(string path, Stream content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        return await WriteCoreAsync(path, options,
            (file, ct) => content.CopyToAsync(file, CopyBufferBytes, ct), cancellationToken).ConfigureAwait(false);
    }

    public async Task<ArtifactInfo> WriteAsync(string path, ReadOnlyMemory<byte> content,
        ArtifactWriteOptions? options = null, CancellationToken cancellationToken = default) =>
        await WriteCoreAsync(path, options, (file, ct) => file.WriteAsync(content, ct).AsTask(), cancellationToken)
            .ConfigureAwait(false);

    public async Task<bool> DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        string file = GetFilePath(path);
        using var held = await LockAsync(path, null, cancellationToken).ConfigureAwait(false);
        if (!File.Exists(file)) return false;
        File.Delete(file);
        // Content first: a crash in between leaves a sidecar whose keys match no future version (stamps only grow).
        TryDelete(MetaFile(file));
        PruneEmptyFolders(Path.GetDirectoryName(file)!, path);
        return true;
    }

    // Folders exist only to hold artifacts: deleting a run's last file used to leave a tree of empty folders behind
    // (issue 16). Stops at the container folder and at the first folder that is not empty; a writer that loses its
    // freshly made folder to this makes it again (see WriteCoreAsync).
    private void PruneEmptyFolders(string folder, string path)
    {
        string container = Path.Combine(_root, ArtifactPath.SplitPrefix(path).Container);
        for (string? f = folder; f is not null && f.Length > container.Length && f.StartsWith(container, StringComparison.Ordinal);
             f = Path.GetDirectoryName(f))
        {
            try
            {
                if (Directory.EnumerateFileSystemEntries(f).Any()) return;
                Directory.Delete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return; // filled again meanwhile, or not ours to remove
            }
        }
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (container, namePrefix) = ArtifactPath.SplitPrefix(prefix);
        int lastSlash = namePrefix.LastIndexOf('/');
        string folderName = lastSlash < 0 ? "" : namePrefix[..lastSlash];
        string folder = Path.Combine(_root, container, folderName.Replace('/', Path.DirectorySeparatorChar));
        if (!Directory.Exists(folder)) yield break;

        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true,
            ReturnSpecialDirectories = false,
        };
        string containerFolder = Path.Combine(_root, container);
        var paths = new List<(string Path, string File)>();
        foreach (string file in Directory.EnumerateFiles(folder, "*", options))
        {
            if (Path.GetFileName(file).StartsWith(ArtifactPath.ReservedSegmentPrefix, StringComparison.Ordinal))
                continue;
            string relative = Path.GetRelativePath(containerFolder, file).Replace(Path.DirectorySeparatorChar, '/');
            string path = container + "/" + relative;
            // Files put there by hand under names no store could hold are not artifacts.
            if (path.StartsWith(prefix, StringComparison.Ordinal) && ArtifactPath.IsValid(path))
                paths.Add((path, file));
        }
        paths.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        foreach (var (path, file) in paths)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Deleted since it was enumerated: not listed.
            if (ReadInfo(path, file) is { } info) yield return info;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    public async Task<ArtifactInfo> CopyAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        string source = GetFilePath(from);
        GetFilePath(to);
        if (from == to)
            return ReadInfo(from, source) ?? throw new ArtifactNotFoundException(from);
        var (stream, info) = OpenVersion(from, source);
        await using (stream.ConfigureAwait(false))
        {
            var options = new ArtifactWriteOptions { Metadata = info.Metadata };
            return await WriteCoreAsync(to, options,
                (file, ct) => stream.CopyToAsync(file, CopyBufferBytes, ct), cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<ArtifactInfo> MoveAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        string source = GetFilePath(from);
        string target = GetFilePath(to);
        if (from == to)
            return ReadInfo(from, source) ?? throw new ArtifactNotFoundException(from);
        PrepareFolder(to, target);
        using var held = await LockAsync(from, to, cancellationToken).ConfigureAwait(false);
        var moving = Stat(source) ?? throw new ArtifactNotFoundException(from);
        var metadata = FindMetadata(ReadSidecar(from, source), moving) ?? ArtifactMetadata.Empty;
        var replaced = Stat(target);

        // The moved file gets a stamp later than both files, so the destination's ETag is new for that path too.
        // Stamp the source in place (same bytes, new ETag), with a sidecar that knows both of its stamps so its
        // readers keep their metadata until the rename.
        long after = Math.Max(moving.Ticks, replaced?.Ticks ?? 0);
        Fingerprint stamped;
        using (var handle = File.OpenHandle(source, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            long ticks = NextStamp(after);
            if (metadata.Count > 0)
                WriteSidecar(source, [Entry(new Fingerprint(ticks, moving.Length), metadata), Entry(moving, metadata)]);
            stamped = StampFile(handle, after, ticks);
        }
        WriteSidecar(target, Versions(target, stamped, metadata, replaced));
        File.Move(source, target, overwrite: true);
        TryDelete(MetaFile(source));
        return Info(to, stamped, metadata);
    }

    private async Task<ArtifactInfo> WriteCoreAsync(string path, ArtifactWriteOptions? options,
        Func<FileStream, CancellationToken, Task> writeContent, CancellationToken cancellationToken)
    {
        string target = GetFilePath(path);
        options ??= new ArtifactWriteOptions();
        var metadata = ArtifactMetadata.Validate(path, options.Metadata);
        var condition = options.Condition ?? ArtifactCondition.None;
        // Fail early, before writing megabytes, when the condition already fails; it is checked again under the lock.
        CheckCondition(path, condition, Stat(target));
        string temp = "";
        try
        {
            // Unbuffered, so every byte is written before the stamp is set (a later write would move the time).
            FileStream file;
            for (int attempt = 0; ; attempt++)
            {
                string folder = PrepareFolder(path, target);
                temp = Path.Combine(folder, TempPrefix + Guid.NewGuid().ToString("N") + "." + Path.GetFileName(target));
                try
                {
                    file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0,
                        FileOptions.Asynchronous);
                    break;
                }
                catch (DirectoryNotFoundException) when (attempt < 3)
                {
                    // A delete of the folder's last artifact removed the folder we just made: make it again.
                }
            }
            await using (file.ConfigureAwait(false))
            {
                await writeContent(file, cancellationToken).ConfigureAwait(false);
                using var held = await LockAsync(path, null, cancellationToken).ConfigureAwait(false);
                // From here on the write completes: cancelling half a commit would only leave more to clean up.
                var replaced = Stat(target);
                CheckCondition(path, condition, replaced);
                var written = StampFile(file.SafeFileHandle, replaced?.Ticks ?? 0, NextStamp(replaced?.Ticks ?? 0));
                file.Flush(flushToDisk: true);
                if (metadata.Count > 0)
                    WriteSidecar(target, Versions(target, written, metadata, replaced));
                file.Close();
                File.Move(temp, target, overwrite: true);
                return Info(path, written, metadata);
            }
        }
        catch (IOException) when (Directory.Exists(target))
        {
            throw FolderClash(path, "a folder of that name exists");
        }
        finally
        {
            if (temp.Length > 0) TryDelete(temp);
        }
    }

    // The sidecar of a new version: its own entry, and the entry of the version it replaces (if that had metadata)
    // for readers who still see the old file, or who see it again because a crash came before the rename.
    private VersionEntry[] Versions(string target, Fingerprint written, IReadOnlyDictionary<string, string> metadata,
        Fingerprint? replaced)
    {
        var entries = new List<VersionEntry> { Entry(written, metadata) };
        if (replaced is { } old && FindMetadata(ReadSidecar(target, target), old) is { Count: > 0 } oldMetadata)
            entries.Add(Entry(old, oldMetadata));
        return entries.Where(e => e.Metadata is { Count: > 0 }).ToArray();
    }

    private static void CheckCondition(string path, ArtifactCondition condition, Fingerprint? current)
    {
        switch (condition.Kind)
        {
            case ArtifactConditionKind.IfNotExists when current is not null:
                throw new ArtifactConflictException(path, "already exists (write condition IfNotExists)");
            case ArtifactConditionKind.IfMatch when current is null:
                throw new ArtifactConflictException(path, $"does not exist (write condition {condition})");
            case ArtifactConditionKind.IfMatch when current.Value.ETag != condition.ETag:
                throw new ArtifactConflictException(path,
                    $"has ETag {current.Value.ETag}, not the expected {condition.ETag} (changed by another writer)");
        }
    }

    // Creates the target's folder; refuses when an artifact (a file) sits where a folder is needed, or vice versa.
    private string PrepareFolder(string path, string target)
    {
        string folder = Path.GetDirectoryName(target)!;
        for (string? f = folder; f is not null && f.Length > _root.Length; f = Path.GetDirectoryName(f))
        {
            if (File.Exists(f))
                throw FolderClash(path, $"'{Path.GetRelativePath(_root, f).Replace('\\', '/')}' is an artifact");
        }
        if (Directory.Exists(target)) throw FolderClash(path, "a folder of that name exists");
        Directory.CreateDirectory(folder);
        return folder;
    }

    private static InvalidSpecException FolderClash(string path, string why) =>
        new($"artifact path '{ArtifactPath.Printable(path)}' cannot be stored in a local folder: {why}, and a " +
            "folder cannot hold a file and a folder of the same name");

    private ArtifactInfo? ReadInfo(string path, string file)
    {
        // The sidecar is matched to the file by (time, length); a miss while the file is being replaced is retried.
        for (int attempt = 0; ; attempt++)
        {
            if (Stat(file) is not { } seen) return null;
            var metadata = FindMetadata(ReadSidecar(path, file), seen);
            if (metadata is not null || Stat(file) == seen || attempt >= 100)
                return Info(path, seen, metadata ?? ArtifactMetadata.Empty);
        }
    }

    private (FileStream Stream, ArtifactInfo Info) OpenVersion(string path, string file)
    {
        for (int attempt = 0; ; attempt++)
        {
            var stream = OpenFile(path, file);
            var seen = Fingerprint.Of(stream.SafeFileHandle);
            var metadata = FindMetadata(ReadSidecar(path, file), seen);
            if (metadata is not null || Stat(file) == seen || attempt >= 100)
                return (stream, Info(path, seen, metadata ?? ArtifactMetadata.Empty));
            // Replaced between opening and reading the sidecar: read the newer version instead.
            stream.Dispose();
        }
    }

    private static FileStream OpenFile(string path, string file)
    {
        try
        {
            // Share everything: writers never touch this file's bytes, they rename a new file over its name.
            return new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete,
                bufferSize: 0, FileOptions.Asynchronous);
        }
        // Not found when the open said so, even if a concurrent writer has renamed a file into place since (checking
        // File.Exists afterwards let that race through as a raw FileNotFoundException); other errors only when the
        // file is indeed not there.
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException
                                  || (e is IOException or UnauthorizedAccessException && !File.Exists(file)))
        {
            throw new ArtifactNotFoundException(path, e);
        }
    }

    private static ArtifactInfo Info(string path, Fingerprint version, IReadOnlyDictionary<string, string> metadata) =>
        new(path, version.Length, version.ETag, new DateTimeOffset(version.Ticks, TimeSpan.Zero), metadata);

    private static Fingerprint? Stat(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? new Fingerprint(info.LastWriteTimeUtc.Ticks, info.Length) : null;
    }

    private long NextStamp(long after)
    {
        long granularity = Interlocked.Read(ref _timeGranularity);
        long now = DateTime.UtcNow.Ticks;
        long stamp = (now + granularity - 1) / granularity * granularity;
        return stamp > after ? stamp : (after / granularity + 1) * granularity;
    }

    // Sets the file's modification time to a stamp later than `after` and returns the file's new fingerprint,
    // learning the file system's time granularity when it rounds the stamp.
    private Fingerprint StampFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long after, long stamp)
    {
        for (int attempt = 0; ; attempt++)
        {
            File.SetLastWriteTimeUtc(handle, new DateTime(stamp, DateTimeKind.Utc));
            var kept = Fingerprint.Of(handle);
            if (kept.Ticks > after) return kept;
            if (attempt >= 3)
                throw new ArtifactStoreException(_root,
                    $"local artifact store '{_root}': the file system does not keep modification times precisely " +
                    "enough to version artifacts");
            long granularity = 1;
            while (granularity < TimeSpan.TicksPerSecond * 2 && kept.Ticks % (granularity * 10) == 0)
                granularity *= 10;
            Interlocked.Exchange(ref _timeGranularity, Math.Max(granularity, TimeSpan.TicksPerSecond / 1000));
            _logger.LogWarning("Local artifact store {Root}: the file system keeps modification times to {Ticks} " +
                               "ticks; ETags step by that much", _root, granularity);
            stamp = NextStamp(after);
        }
    }

    private static string MetaFile(string file) =>
        Path.Combine(Path.GetDirectoryName(file)!, MetaPrefix + Path.GetFileName(file));

    private Sidecar? ReadSidecar(string path, string file)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(MetaFile(file));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(bytes, StorageJson.Default.Sidecar);
        }
        catch (JsonException e)
        {
            // Only a hand edit can break it (it is written by rename); the content is still good, its metadata lost.
            _logger.LogWarning("Metadata sidecar of {Path} is unreadable and ignored: {Error}", path, e.Message);
            return null;
        }
    }

    private static IReadOnlyDictionary<string, string>? FindMetadata(Sidecar? sidecar, Fingerprint version)
    {
        var entry = sidecar?.Versions?.FirstOrDefault(v => v.Ticks == version.Ticks && v.Length == version.Length);
        return entry is null
            ? null
            : new Dictionary<string, string>(entry.Metadata ?? new(), StringComparer.OrdinalIgnoreCase);
    }

    private static void WriteSidecar(string file, IReadOnlyCollection<VersionEntry> versions)
    {
        string meta = MetaFile(file);
        if (versions.Count == 0)
        {
            TryDelete(meta);
            return;
        }
        string temp = Path.Combine(Path.GetDirectoryName(file)!, TempPrefix + Guid.NewGuid().ToString("N") + ".m");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var sidecar = new Sidecar { Versions = versions.ToList() };
                JsonSerializer.Serialize(stream, sidecar, StorageJson.Default.Sidecar);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, meta, overwrite: true);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException)
        {
            // Best effort: a leftover temporary or sidecar file is invisible and harmless.
        }
    }

    private async Task<IDisposable> LockAsync(string path, string? secondPath, CancellationToken cancellationToken)
    {
        int first = Stripe(path);
        int second = secondPath is null ? first : Stripe(secondPath);
        // Always in ascending order, so two moves in opposite directions cannot deadlock.
        var held = new List<IDisposable>();
        try
        {
            int[] stripes = first == second ? [first] : [Math.Min(first, second), Math.Max(first, second)];
            foreach (int stripe in stripes)
                held.Add(await LockStripeAsync(stripe, path, cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            foreach (var h in Enumerable.Reverse(held)) h.Dispose();
            throw;
        }
        return new Releaser(() =>
        {
            foreach (var h in Enumerable.Reverse(held)) h.Dispose();
        });
    }

    private async Task<IDisposable> LockStripeAsync(int stripe, string path, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var semaphore = _stripes[stripe];
        if (!await semaphore.WaitAsync(LockTimeout, cancellationToken).ConfigureAwait(false))
            throw LockTimedOut(path, null);
        string lockFile = Path.Combine(_lockFolder, $"{stripe:x2}.lock");
        var delay = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            try
            {
                var file = new FileStream(lockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None,
                    bufferSize: 0);
                return new Releaser(() =>
                {
                    file.Dispose();
                    semaphore.Release();
                });
            }
            catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException
                                                  or PathTooLongException))
            {
                // Held by another process (or another store on this folder in this process): wait and retry.
                if (DateTime.UtcNow - started > LockTimeout)
                {
                    semaphore.Release();
                    throw LockTimedOut(path, e);
                }
                try
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    semaphore.Release();
                    throw;
                }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 50));
            }
            catch
            {
                semaphore.Release();
                throw;
            }
        }
    }

    private ArtifactStoreUnavailableException LockTimedOut(string path, Exception? inner) =>
        new(path, $"artifact '{ArtifactPath.Printable(path)}': another writer held its lock in '{_lockFolder}' for " +
                  $"more than {LockTimeout.TotalSeconds:0} s", inner);

    private static int Stripe(string path)
    {
        // FNV-1a: stable across processes (string.GetHashCode is randomised per process).
        uint hash = 2166136261;
        foreach (char c in path)
        {
            hash = (hash ^ c) * 16777619;
        }
        return (int)(hash % LockStripes);
    }

    private sealed class Releaser(Action release) : IDisposable
    {
        private Action? _release = release;

        public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
    }

    /// <summary>What identifies one version of a file: its modification time in ticks and its length.</summary>
    private readonly record struct Fingerprint(long Ticks, long Length)
    {
        public string ETag => $"{Ticks:x}-{Length:x}";

        public static Fingerprint Of(Microsoft.Win32.SafeHandles.SafeFileHandle handle) =>
            new(File.GetLastWriteTimeUtc(handle).Ticks, RandomAccess.GetLength(handle));
    }

    private static VersionEntry Entry(Fingerprint version, IReadOnlyDictionary<string, string> metadata) =>
        new() { Ticks = version.Ticks, Length = version.Length, Metadata = new Dictionary<string, string>(metadata) };

    /// <summary>The metadata of one version, keyed by that version's fingerprint (sidecar JSON).</summary>
    internal sealed record VersionEntry
    {
        public long Ticks { get; init; }
        public long Length { get; init; }
        public Dictionary<string, string>? Metadata { get; init; }
    }

    internal sealed record Sidecar
    {
        public List<VersionEntry>? Versions { get; init; }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LocalFolderArtifactStore.Sidecar))]
internal partial class StorageJson : JsonSerializerContext;
