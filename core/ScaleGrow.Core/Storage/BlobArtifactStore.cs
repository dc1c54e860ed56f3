using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Azure;
using Azure.Core;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace ScaleGrow.Storage;

/// <summary>
/// An artifact store on Azure Blob Storage (or Azurite): artifact <c>runs/r1/spec.json</c> is blob <c>r1/spec.json</c>
/// in container <c>runs</c>. Containers are created on first write.
/// </summary>
/// <remarks>
/// <para><b>Atomic writes.</b> An upload is one Put Blob, or for large content staged blocks committed by one Put Block
/// List; either commit replaces the blob at once, so readers never see part of a write. A whole-blob download is one
/// GET of one version; if the SDK has to resume it, it asks for the same ETag and fails rather than mix versions.
/// </para>
/// <para><b>Conditions</b> travel with the commit (<c>If-None-Match: *</c>, <c>If-Match: etag</c>), so the service
/// decides them atomically; 409/412 become <see cref="ArtifactConflictException"/>, 404
/// <see cref="ArtifactNotFoundException"/>; network failures, timeouts, 408, 429 and 5xx (after the SDK's own
/// retries) <see cref="ArtifactStoreUnavailableException"/>, for the caller's retry policy.</para>
/// <para><b>Retried commits.</b> When the SDK re-sends a conditional write whose first attempt did commit but whose
/// answer was lost, the service answers the re-send with a conflict — against our own write. Every write therefore
/// carries a random write id in a reserved metadata entry; on a conflict the store reads the blob's properties, and if
/// they carry its write id the write succeeded and is reported so. (If another writer replaced the blob in between,
/// the write is reported as a conflict although it briefly committed; callers of read-modify-write loops already treat
/// a conflict as "re-read and decide again".)</para>
/// <para><b>Copy and move</b> stream the content through this process (download, then one atomic upload) rather than
/// use the service's asynchronous copy, whose destination is not readable until the copy ends; a move then deletes the
/// source only if it is still the version copied.</para>
/// </remarks>
public sealed class BlobArtifactStore : IArtifactStore
{
    private readonly ConcurrentDictionary<string, bool> _knownContainers = new(StringComparer.Ordinal);

    /// <summary>A store on an existing client (its credentials, retry and transport options are used as they are).
    /// </summary>
    public BlobArtifactStore(BlobServiceClient service)
    {
        Service = service ?? throw new ArgumentNullException(nameof(service));
    }

    /// <summary>
    /// A store from a storage connection string: <c>UseDevelopmentStorage=true</c> (Azurite on its default ports),
    /// <c>DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…</c>, or one with an explicit
    /// <c>BlobEndpoint=…</c>.
    /// </summary>
    /// <exception cref="InvalidSpecException">The string is not a storage connection string.</exception>
    public BlobArtifactStore(string connectionString) : this(CreateClient(connectionString)) { }

    /// <summary>
    /// A store on an account URL (<c>https://{account}.blob.core.windows.net</c>) with an Azure AD credential, e.g. a
    /// managed identity from Azure.Identity (the app references that package; this library needs only Azure.Core).
    /// </summary>
    public BlobArtifactStore(Uri accountUrl, TokenCredential credential)
        : this(new BlobServiceClient(accountUrl ?? throw new ArgumentNullException(nameof(accountUrl)),
            credential ?? throw new ArgumentNullException(nameof(credential))))
    {
    }

    /// <summary>The client the store works through.</summary>
    public BlobServiceClient Service { get; }

    private static BlobServiceClient CreateClient(string connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new InvalidSpecException("blob artifact store: the connection string is empty");
        try
        {
            return new BlobServiceClient(connectionString);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            // The string holds secrets: name the problem, never the string.
            throw new InvalidSpecException(
                $"blob artifact store: the connection string is not valid ({e.GetType().Name}: " +
                $"{e.Message.ReplaceLineEndings(" ")})");
        }
    }

    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        return Call(path, "read properties of", async () =>
        {
            try
            {
                var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken)
                    .ConfigureAwait(false);
                var p = properties.Value;
                return Info(path, p.ContentLength, p.ETag, p.LastModified, p.Metadata);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return (ArtifactInfo?)null;
            }
        }, cancellationToken);
    }

    public async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        await GetInfoAsync(path, cancellationToken).ConfigureAwait(false) is not null;

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        return Call(path, "read", async () =>
        {
            var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            return download.Value.Content;
        }, cancellationToken);
    }

    /// <remarks>The SDK's seekable read stream with <c>allowModifications: false</c> and <c>If-Match</c>: every range
    /// it fetches (4 MiB at a time) is conditional on the ETag, so a blob replaced mid-read fails the next fetch (412)
    /// instead of mixing versions; that failure surfaces as <see cref="ArtifactConflictException"/>.</remarks>
    public Task<Stream> OpenVersionAsync(string path, string eTag, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(eTag);
        var blob = Blob(path);
        return Call(path, "read", async () =>
        {
            var options = new BlobOpenReadOptions(allowModifications: false)
            {
                BufferSize = ReadChunkBytes, Conditions = new BlobRequestConditions { IfMatch = new ETag(eTag) },
            };
            try
            {
                var stream = await blob.OpenReadAsync(options, cancellationToken).ConfigureAwait(false);
                return (Stream)new TranslatingReadStream(stream, path);
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                // A condition on a blob that is gone may also answer 412: say which it is.
                if (!(await blob.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value)
                    throw new ArtifactNotFoundException(path, e);
                throw new ArtifactConflictException(path, $"is no longer the version with ETag {eTag}", e);
            }
        }, cancellationToken);
    }

    /// <summary>Range size of <see cref="OpenVersionAsync"/>'s reads: the most a streamed read holds at once.</summary>
    public const int ReadChunkBytes = 4 << 20;

    public Task<ArtifactContent> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        return Call(path, "read", async () =>
        {
            var download = await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            var d = download.Value.Details;
            var bytes = download.Value.Content.ToMemory();
            return new ArtifactContent(Info(path, bytes.Length, d.ETag, d.LastModified, d.Metadata), bytes);
        }, cancellationToken);
    }

    public async Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default) =>
        (await ReadAsync(path, cancellationToken).ConfigureAwait(false)).Bytes.ToArray();

    public Task<ArtifactInfo> WriteAsync(string path, Stream content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (!content.CanRead) throw new ArgumentException("the content stream is not readable", nameof(content));
        long start = content.CanSeek ? content.Position : -1;
        return UploadAsync(path, options, async (blob, upload, ct) =>
        {
            if (start >= 0)
            {
                // Rewound for the second attempt after a container was recreated.
                content.Position = start;
                var response = await blob.UploadAsync(content, upload, ct).ConfigureAwait(false);
                return (response.Value, content.Length - start);
            }
            var counted = new CountingReadStream(content);
            var result = await blob.UploadAsync(counted, upload, ct).ConfigureAwait(false);
            return (result.Value, counted.BytesRead);
        }, canRepeat: start >= 0, cancellationToken);
    }

    public Task<ArtifactInfo> WriteAsync(string path, ReadOnlyMemory<byte> content,
        ArtifactWriteOptions? options = null, CancellationToken cancellationToken = default) =>
        UploadAsync(path, options, async (blob, upload, ct) =>
        {
            var response = await blob.UploadAsync(BinaryData.FromBytes(content), upload, ct).ConfigureAwait(false);
            return (response.Value, (long)content.Length);
        }, canRepeat: true, cancellationToken);

    public Task<bool> DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        return Call(path, "delete", async () =>
        {
            try
            {
                var deleted = await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots,
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                return deleted.Value;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return false;
            }
        }, cancellationToken);
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (containerName, namePrefix) = ArtifactPath.SplitPrefix(prefix);
        var container = Service.GetBlobContainerClient(containerName);
        var found = await Call(prefix, "list", async () =>
        {
            var items = new List<ArtifactInfo>();
            try
            {
                var options = new GetBlobsOptions
                {
                    Traits = BlobTraits.Metadata, Prefix = namePrefix.Length == 0 ? null : namePrefix,
                };
                await foreach (var item in container.GetBlobsAsync(options, cancellationToken).ConfigureAwait(false))
                {
                    string path = containerName + "/" + item.Name;
                    // Blobs written by other tools under names this store refuses are not artifacts.
                    if (!ArtifactPath.IsValid(path)) continue;
                    var p = item.Properties;
                    items.Add(Info(path, p.ContentLength ?? 0, p.ETag ?? default,
                        p.LastModified ?? DateTimeOffset.MinValue, item.Metadata));
                }
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // No container: nothing was ever written there.
            }
            // The service lists in its own collation; the contract promises ordinal order of the path.
            items.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
            return items;
        }, cancellationToken).ConfigureAwait(false);
        foreach (var info in found) yield return info;
    }

    public async Task<ArtifactInfo> CopyAsync(string from, string to, CancellationToken cancellationToken = default) =>
        (await CopyCoreAsync(from, to, cancellationToken).ConfigureAwait(false)).Destination;

    public async Task<ArtifactInfo> MoveAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        var (destination, sourceETag) = await CopyCoreAsync(from, to, cancellationToken).ConfigureAwait(false);
        if (from == to) return destination;
        var source = Blob(from);
        await Call(from, "delete (after moving it to '" + ArtifactPath.Printable(to) + "')", async () =>
        {
            try
            {
                await source.DeleteAsync(DeleteSnapshotsOption.IncludeSnapshots,
                    new BlobRequestConditions { IfMatch = new ETag(sourceETag) }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Already gone (deleted by someone else): the move's outcome is the same.
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                throw new ArtifactConflictException(from,
                    $"was overwritten while being moved to '{ArtifactPath.Printable(to)}'; the destination holds " +
                    "the version read, the new version stays at the source", e);
            }
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return destination;
    }

    private async Task<(ArtifactInfo Destination, string SourceETag)> CopyCoreAsync(string from, string to,
        CancellationToken cancellationToken)
    {
        var source = Blob(from);
        ArtifactPath.Validate(to);
        if (from == to)
        {
            var info = await GetInfoAsync(from, cancellationToken).ConfigureAwait(false)
                       ?? throw new ArtifactNotFoundException(from);
            return (info, info.ETag);
        }
        var download = await Call(from, "read", () => source.DownloadStreamingAsync(
            cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false);
        using var content = download.Value.Content;
        var details = download.Value.Details;
        var options = new ArtifactWriteOptions { Metadata = WithoutWriteId(details.Metadata) };
        var destination = await WriteAsync(to, content, options, cancellationToken).ConfigureAwait(false);
        return (destination, Canonical(details.ETag));
    }

    private async Task<ArtifactInfo> UploadAsync(string path, ArtifactWriteOptions? options,
        Func<BlobClient, BlobUploadOptions, CancellationToken, Task<(BlobContentInfo Info, long Length)>> upload,
        bool canRepeat, CancellationToken cancellationToken)
    {
        var (containerName, _) = ArtifactPath.Split(path);
        var blob = Blob(path);
        options ??= new ArtifactWriteOptions();
        var metadata = ArtifactMetadata.Validate(path, options.Metadata);
        var condition = options.Condition ?? ArtifactCondition.None;
        string writeId = Guid.NewGuid().ToString("N");
        var uploadOptions = new BlobUploadOptions
        {
            Metadata = new Dictionary<string, string>(metadata) { [ArtifactMetadata.WriteIdName] = writeId },
            Conditions = condition.Kind switch
            {
                ArtifactConditionKind.IfNotExists => new BlobRequestConditions { IfNoneMatch = ETag.All },
                ArtifactConditionKind.IfMatch => new BlobRequestConditions { IfMatch = new ETag(condition.ETag!) },
                _ => null,
            },
        };

        return await Call(path, "write", async () =>
        {
            for (int attempt = 0; ; attempt++)
            {
                await EnsureContainerAsync(containerName, path, cancellationToken).ConfigureAwait(false);
                try
                {
                    var (written, length) = await upload(blob, uploadOptions, cancellationToken).ConfigureAwait(false);
                    return InfoWith(path, length, written.ETag, written.LastModified, metadata);
                }
                catch (RequestFailedException e)
                    when (e.Status == 404 && condition.Kind == ArtifactConditionKind.IfMatch)
                {
                    throw new ArtifactConflictException(path, $"does not exist (write condition {condition})", e);
                }
                catch (RequestFailedException e) when (e.Status == 404 && canRepeat && attempt == 0)
                {
                    // The container was deleted after this store created it: create it again, once.
                    _knownContainers.TryRemove(containerName, out _);
                }
                catch (RequestFailedException e) when (e.Status is 409 or 412)
                {
                    if (await CommittedByThisWrite(blob, writeId, cancellationToken).ConfigureAwait(false) is { } mine)
                        return Info(path, mine.ContentLength, mine.ETag, mine.LastModified, mine.Metadata);
                    string reason = condition.Kind == ArtifactConditionKind.IfNotExists
                        ? "already exists (write condition IfNotExists)"
                        : $"has changed since it was read (write condition {condition}; service said {e.ErrorCode})";
                    throw new ArtifactConflictException(path, reason, e);
                }
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    // A conflict may answer a re-sent request whose first attempt committed: the blob then carries this write's id.
    private static async Task<BlobProperties?> CommittedByThisWrite(BlobClient blob, string writeId,
        CancellationToken cancellationToken)
    {
        try
        {
            var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)
                .ConfigureAwait(false)).Value;
            return properties.Metadata.TryGetValue(ArtifactMetadata.WriteIdName, out var id) && id == writeId
                ? properties
                : null;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private async Task EnsureContainerAsync(string containerName, string path, CancellationToken cancellationToken)
    {
        if (_knownContainers.ContainsKey(containerName)) return;
        try
        {
            await Service.GetBlobContainerClient(containerName)
                .CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // ContainerBeingDeleted: the name frees up within seconds.
            throw new ArtifactStoreUnavailableException(path,
                $"container '{containerName}' cannot be created now ({e.ErrorCode}); retry later", e);
        }
        _knownContainers.TryAdd(containerName, true);
    }

    private BlobClient Blob(string path)
    {
        var (container, name) = ArtifactPath.Split(path);
        return Service.GetBlobContainerClient(container).GetBlobClient(name);
    }

    private static ArtifactInfo Info(string path, long length, ETag eTag, DateTimeOffset lastModified,
        IDictionary<string, string>? metadata) =>
        new(path, length, Canonical(eTag), lastModified, WithoutWriteId(metadata));

    private static ArtifactInfo InfoWith(string path, long length, ETag eTag, DateTimeOffset lastModified,
        IReadOnlyDictionary<string, string> metadata) =>
        new(path, length, Canonical(eTag), lastModified, metadata);

    // Headers carry the ETag quoted ("0x8D…"), listings unquoted (0x8D…): one artifact version, one string.
    private static string Canonical(ETag eTag)
    {
        string text = eTag.ToString();
        return text.StartsWith('"') || text.StartsWith("W/", StringComparison.Ordinal) ? text : $"\"{text}\"";
    }

    private static IReadOnlyDictionary<string, string> WithoutWriteId(IDictionary<string, string>? metadata)
    {
        var copy = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (metadata is null) return copy;
        foreach (var (name, value) in metadata)
        {
            if (!name.Equals(ArtifactMetadata.WriteIdName, StringComparison.OrdinalIgnoreCase)) copy[name] = value;
        }
        return copy;
    }

    // Runs one service call and turns the SDK's failures into the store's exceptions (one line, naming the path).
    private static async Task<T> Call<T>(string path, string operation, Func<Task<T>> action,
        CancellationToken cancellationToken)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (Translate(e, path, operation, cancellationToken) is { } translated)
        {
            throw translated;
        }
    }

    private static Exception? Translate(Exception e, string path, string operation, CancellationToken cancellation)
    {
        string where = $"{operation} '{ArtifactPath.Printable(path)}'";
        switch (e)
        {
            case ScaleGrowException:
                return null;
            case OperationCanceledException when cancellation.IsCancellationRequested:
                return null;
            case RequestFailedException { Status: 404 } r:
                return new ArtifactNotFoundException(path, r);
            case RequestFailedException { Status: 409 or 412 } r:
                return new ArtifactConflictException(path, $"{operation} failed: {r.ErrorCode ?? "conflict"}", r);
            case RequestFailedException { Status: 0 or 408 or 429 or >= 500 } r:
                return new ArtifactStoreUnavailableException(path,
                    $"{where} failed: storage unavailable ({Describe(r)}); retry later", r);
            case RequestFailedException r:
                return new ArtifactStoreException(path, $"{where} failed: {Describe(r)}", r);
            case OperationCanceledException or TimeoutException:
                return new ArtifactStoreUnavailableException(path, $"{where} timed out; retry later", e);
            case HttpRequestException or IOException or SocketException:
                return new ArtifactStoreUnavailableException(path,
                    $"{where} failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}; retry later", e);
            case AggregateException aggregate when aggregate.InnerExceptions.All(inner =>
                Translate(inner, path, operation, cancellation) is ArtifactStoreUnavailableException):
                // The SDK's retry policy gave up after several transient failures.
                return new ArtifactStoreUnavailableException(path,
                    $"{where} failed {aggregate.InnerExceptions.Count} times: " +
                    $"{aggregate.InnerExceptions[^1].GetType().Name}; retry later", e);
            default:
                return null;
        }
    }

    private static string Describe(RequestFailedException e) =>
        e.Status == 0 ? "no response" : $"HTTP {e.Status} {e.ErrorCode}".TrimEnd();

    /// <summary>
    /// A pinned read stream whose failures speak the store's language: a version replaced mid-read (412) is an
    /// <see cref="ArtifactConflictException"/>, a network failure <see cref="ArtifactStoreUnavailableException"/>.
    /// </summary>
    private sealed class TranslatingReadStream(Stream inner, string path) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => inner.Position = value;
        }

        // Span reads go through one small array: a stream that does not override Read(Span) would otherwise rent an
        // array as large as the request, and tensor reads ask for up to 1 GiB at a time.
        private readonly byte[] _scratch = new byte[1 << 20];

        public override int Read(byte[] buffer, int offset, int count)
        {
            try
            {
                return inner.Read(buffer, offset, count);
            }
            catch (Exception e) when (Failure(e) is { } translated)
            {
                throw translated;
            }
        }

        public override int Read(Span<byte> buffer)
        {
            int read = Read(_scratch, 0, Math.Min(buffer.Length, _scratch.Length));
            _scratch.AsSpan(0, read).CopyTo(buffer);
            return read;
        }

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count,
            CancellationToken cancellationToken)
        {
            try
            {
                return await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Failure(e) is { } translated)
            {
                throw translated;
            }
        }

        [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1835", Justification =
            "Memory reads go through the array overload and _scratch on purpose (see _scratch).")]
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer,
            CancellationToken cancellationToken = default)
        {
            if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(buffer, out var array))
                return await ReadAsync(array.Array!, array.Offset, array.Count, cancellationToken)
                    .ConfigureAwait(false);
            int read = await ReadAsync(_scratch, 0, Math.Min(buffer.Length, _scratch.Length), cancellationToken)
                .ConfigureAwait(false);
            _scratch.AsSpan(0, read).CopyTo(buffer.Span);
            return read;
        }

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        private Exception? Failure(Exception e) => e switch
        {
            RequestFailedException { Status: 412 } r =>
                new ArtifactConflictException(path, "was replaced while it was being read", r),
            _ => Translate(e, path, "read", CancellationToken.None),
        };
    }

    /// <summary>Counts what an upload reads from a stream whose length is not known in advance.</summary>
    private sealed class CountingReadStream(Stream inner) : Stream
    {
        public long BytesRead { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => BytesRead;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count,
            CancellationToken cancellationToken) =>
            Count(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer,
            CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            BytesRead += read;
            return read;
        }
    }
}
