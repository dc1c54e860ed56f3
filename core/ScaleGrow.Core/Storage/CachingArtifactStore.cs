using System.Runtime.InteropServices;

namespace ScaleGrow.Storage;

/// <summary>
/// An in-memory read cache in front of another store, for a worker that runs consecutive activities of one run:
/// the checkpoint one activity writes is what the next one reads, and re-downloading it would cost as much as the
/// step itself. Written and read artifacts are kept (least recently used dropped first, up to a byte budget); a read
/// still asks the inner store for the artifact's current ETag (one cheap metadata call) and serves the cached bytes
/// only when they are exactly that version, so another writer's change is never hidden.
/// </summary>
/// <remarks>
/// Entries are keyed by path and remember the ETag of the version they hold, taken from the same call that produced
/// the bytes (<see cref="IArtifactStore.WriteAsync(string, ReadOnlyMemory{byte}, ArtifactWriteOptions?,
/// CancellationToken)"/>'s result or <see cref="IArtifactStore.ReadAsync"/>), never from a separate look-up that could
/// see a newer version. Since every write gives a new ETag, an entry whose ETag is current holds current bytes.
/// Stream writes are cached when the stream can seek and fits the budget (they are then written from memory);
/// bytes handed out are copies, or read-only views.
/// </remarks>
public sealed class CachingArtifactStore : IArtifactStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private long _cachedBytes;
    private long _hits;
    private long _misses;

    /// <param name="inner">The store that holds the truth.</param>
    /// <param name="maxBytes">Most bytes kept in memory; an artifact larger than this is never cached.</param>
    public CachingArtifactStore(IArtifactStore inner, long maxBytes)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        if (maxBytes < 0) throw new InvalidSpecException($"artifact cache: maxBytes must be >= 0, got {maxBytes}");
        MaxBytes = maxBytes;
    }

    public IArtifactStore Inner { get; }

    public long MaxBytes { get; }

    /// <summary>Bytes held now.</summary>
    public long CachedBytes
    {
        get
        {
            lock (_lock) return _cachedBytes;
        }
    }

    /// <summary>Reads served from memory (after the ETag check).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Reads that went to the inner store.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken cancellationToken = default) =>
        Inner.GetInfoAsync(path, cancellationToken);

    public Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        Inner.ExistsAsync(path, cancellationToken);

    public async Task<ArtifactContent> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var current = await CurrentAsync(path, cancellationToken).ConfigureAwait(false);
        return Find(path, current) is { } cached
            ? new ArtifactContent(current, cached)
            : await ReadThroughAsync(path, cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) =>
        (await ReadAsync(path, cancellationToken).ConfigureAwait(false)).Bytes.ToArray();

    public async Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var current = await CurrentAsync(path, cancellationToken).ConfigureAwait(false);
        ReadOnlyMemory<byte> bytes;
        if (Find(path, current) is { } cached) bytes = cached;
        // Too large to keep: stream it from the inner store.
        else if (current.Length > MaxBytes)
            return await Inner.OpenReadAsync(path, cancellationToken).ConfigureAwait(false);
        else bytes = (await ReadThroughAsync(path, cancellationToken).ConfigureAwait(false)).Bytes;
        return MemoryMarshal.TryGetArray(bytes, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(bytes.ToArray(), writable: false);
    }

    /// <summary>Streams from the inner store: a pinned version is read once, straight through.</summary>
    public Task<Stream> OpenVersionAsync(string path, string eTag, CancellationToken cancellationToken = default) =>
        Inner.OpenVersionAsync(path, eTag, cancellationToken);

    private async Task<ArtifactInfo> CurrentAsync(string path, CancellationToken cancellationToken)
    {
        var current = await Inner.GetInfoAsync(path, cancellationToken).ConfigureAwait(false);
        if (current is not null) return current;
        Forget(path);
        throw new ArtifactNotFoundException(path);
    }

    private async Task<ArtifactContent> ReadThroughAsync(string path, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _misses);
        // The version read may already be newer than the one just checked: it is cached under its own ETag.
        var content = await Inner.ReadAsync(path, cancellationToken).ConfigureAwait(false);
        Remember(path, content.Info.ETag, content.Bytes);
        return content;
    }

    public async Task<ArtifactInfo> WriteAsync(string path, Stream content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (content.CanSeek && content.Length - content.Position <= MaxBytes)
        {
            var bytes = new byte[content.Length - content.Position];
            await content.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            return await WriteOwnedAsync(path, bytes, options, cancellationToken).ConfigureAwait(false);
        }
        Forget(path);
        return await Inner.WriteAsync(path, content, options, cancellationToken).ConfigureAwait(false);
    }

    public Task<ArtifactInfo> WriteAsync(string path, ReadOnlyMemory<byte> content,
        ArtifactWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (content.Length > MaxBytes)
        {
            Forget(path);
            return Inner.WriteAsync(path, content, options, cancellationToken);
        }
        // A copy: the caller may reuse its buffer after the call.
        return WriteOwnedAsync(path, content.ToArray(), options, cancellationToken);
    }

    public async Task<bool> DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        Forget(path);
        return await Inner.DeleteAsync(path, cancellationToken).ConfigureAwait(false);
    }

    public IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        Inner.ListAsync(prefix, cancellationToken);

    public async Task<ArtifactInfo> CopyAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        Forget(to);
        return await Inner.CopyAsync(from, to, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ArtifactInfo> MoveAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        Forget(from);
        Forget(to);
        return await Inner.MoveAsync(from, to, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ArtifactInfo> WriteOwnedAsync(string path, byte[] bytes, ArtifactWriteOptions? options,
        CancellationToken cancellationToken)
    {
        ArtifactInfo written;
        try
        {
            written = await Inner.WriteAsync(path, bytes, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Whatever the store holds now, it is not known here.
            Forget(path);
            throw;
        }
        Remember(path, written.ETag, bytes);
        return written;
    }

    private ReadOnlyMemory<byte>? Find(string path, ArtifactInfo current)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(path, out var node)) return null;
            if (node.Value.ETag != current.ETag || node.Value.Bytes.Length != current.Length)
            {
                Remove(node);
                return null;
            }
            _recency.Remove(node);
            _recency.AddFirst(node);
            Interlocked.Increment(ref _hits);
            return node.Value.Bytes;
        }
    }

    private void Remember(string path, string eTag, ReadOnlyMemory<byte> bytes)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(path, out var old)) Remove(old);
            if (bytes.Length > MaxBytes) return;
            var node = _recency.AddFirst(new Entry(path, eTag, bytes));
            _entries[path] = node;
            _cachedBytes += bytes.Length;
            while (_cachedBytes > MaxBytes && _recency.Last is { } last) Remove(last);
        }
    }

    private void Forget(string path)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(path, out var node)) Remove(node);
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _recency.Remove(node);
        _entries.Remove(node.Value.Path);
        _cachedBytes -= node.Value.Bytes.Length;
    }

    private sealed record Entry(string Path, string ETag, ReadOnlyMemory<byte> Bytes);
}
