using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using ScaleGrow.Storage;

namespace ScaleGrow.Runs;

/// <summary>
/// The run's step log (<c>runs/{id}/journal.json</c>): entries keyed by what they record (<c>epoch-0004</c>,
/// <c>growth-0002</c>, …) and upserted, so an activity retried after a crash records its step once, not twice.
/// Writes are conditional on the journal's ETag and retried on conflict, so concurrent writers never lose an entry.
/// </summary>
public sealed class RunJournal(IArtifactStore store, string runId)
{
    private readonly string _path = RunPaths.Journal(runId);

    /// <summary>Indented JSON, as the journal and the run's reports are written (one cached options instance).</summary>
    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public async Task UpsertAsync(string key, JsonObject entry, CancellationToken cancellationToken = default)
    {
        entry["key"] = key;
        // When the entry was (last) written: a step re-executed after a crash shows up as a changed time.
        entry["writtenAt"] = DateTime.UtcNow.ToString("O");
        for (int attempt = 0; ; attempt++)
        {
            var (etag, journal) = await ReadAsync(cancellationToken);
            var entries = journal["entries"]!.AsArray();
            int existing = -1;
            for (int i = 0; i < entries.Count; i++)
                if ((string?)entries[i]!["key"] == key) { existing = i; break; }
            if (existing >= 0) entries[existing] = entry;
            else entries.Add(entry);
            var bytes = JsonSerializer.SerializeToUtf8Bytes(journal, Indented);
            try
            {
                await store.WriteAsync(_path, bytes,
                    etag is null ? ArtifactWriteOptions.IfNotExists : ArtifactWriteOptions.IfMatch(etag), cancellationToken);
                return;
            }
            catch (ArtifactConflictException) when (attempt < 20)
            {
                await Task.Delay(10 * (attempt + 1), cancellationToken);
            }
        }
    }

    /// <summary>Upserts a typed run entry (its <c>kind</c> comes from its type, see <see cref="RunJournalEntry"/>).</summary>
    public Task UpsertAsync(string key, RunJournalEntry entry, CancellationToken cancellationToken = default) =>
        UpsertAsync(key, entry, RunStepsJson.Default.RunJournalEntry, cancellationToken);

    /// <summary>Upserts a typed entry of any journal's hierarchy (a sweep's: <c>Sweeps.SweepJournalEntry</c>).</summary>
    public Task UpsertAsync<TEntry>(string key, TEntry entry, JsonTypeInfo<TEntry> type,
        CancellationToken cancellationToken = default) =>
        UpsertAsync(key, JsonSerializer.SerializeToNode(entry, type)!.AsObject(), cancellationToken);

    /// <summary>The entries as stored: the journal's file format (reports and the HTTP API pass them on as JSON).</summary>
    public async Task<IReadOnlyList<JsonObject>> EntriesAsync(CancellationToken cancellationToken = default)
    {
        var (_, journal) = await ReadAsync(cancellationToken);
        return journal["entries"]!.AsArray().Select(e => e!.AsObject()).ToList();
    }

    /// <summary>A run's entries, typed by kind (<c>journal.OfType&lt;GrowthEntry&gt;()</c>).</summary>
    public Task<IReadOnlyList<RunJournalEntry>> RunEntriesAsync(CancellationToken cancellationToken = default) =>
        EntriesAsync(RunStepsJson.Default.RunJournalEntry, cancellationToken);

    /// <summary>The entries, typed by kind in <typeparamref name="TEntry"/>'s hierarchy.</summary>
    public async Task<IReadOnlyList<TEntry>> EntriesAsync<TEntry>(JsonTypeInfo<TEntry> type,
        CancellationToken cancellationToken = default) =>
        (await EntriesAsync(cancellationToken)).Select(e => Read(e, type, _path)).ToList();

    /// <summary>One stored entry, typed; a malformed one is a <see cref="CheckpointFormatException"/> naming it.</summary>
    public static TEntry Read<TEntry>(JsonObject entry, JsonTypeInfo<TEntry> type, string source)
    {
        try
        {
            // A kind this version does not know (a newer writer's, or another journal's) reads as the base entry:
            // System.Text.Json's fallback covers writing unknown types only, not reading unknown discriminators.
            var known = type.PolymorphismOptions?.DerivedTypes.Select(d => d.TypeDiscriminator as string);
            if (Text(entry["kind"]) is { } kind && known is not null && !known.Contains(kind))
            {
                var plain = entry.DeepClone().AsObject();
                plain.Remove("kind");
                entry = plain;
            }
            return entry.Deserialize(type) ?? throw new CheckpointFormatException($"{source}: a journal entry is null");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            throw new CheckpointFormatException($"{source}: journal entry '{Text(entry["key"])}' is not a valid " +
                                                $"{Text(entry["kind"])} entry: {e.Message}");
        }
    }

    private static string? Text(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : node?.ToJsonString();

    /// <summary>A typed run entry as the journal stores it.</summary>
    public static JsonObject ToJson(RunJournalEntry entry) =>
        JsonSerializer.SerializeToNode(entry, RunStepsJson.Default.RunJournalEntry)!.AsObject();

    /// <summary>The journal and the ETag it was read at (null: no journal yet).</summary>
    private async Task<(string? ETag, JsonObject Journal)> ReadAsync(CancellationToken cancellationToken)
    {
        ArtifactContent content;
        try
        {
            content = await store.ReadAsync(_path, cancellationToken);
        }
        catch (ArtifactNotFoundException)
        {
            return (null, new JsonObject { ["runId"] = runId, ["entries"] = new JsonArray() });
        }
        try
        {
            var journal = JsonNode.Parse(content.Bytes.Span)?.AsObject();
            if (journal?["entries"] is not JsonArray)
                throw new CheckpointFormatException($"{_path}: not a run journal (no entries array)");
            return (content.Info.ETag, journal);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{_path}: the journal is not valid JSON: {e.Message}");
        }
    }
}
