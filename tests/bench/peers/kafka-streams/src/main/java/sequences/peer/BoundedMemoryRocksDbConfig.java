package sequences.peer;

import java.util.Map;
import org.apache.kafka.streams.state.RocksDBConfigSetter;
import org.rocksdb.BlockBasedTableConfig;
import org.rocksdb.Cache;
import org.rocksdb.LRUCache;
import org.rocksdb.Options;
import org.rocksdb.WriteBufferManager;

/**
 * Kafka Streams' documented way to bound RocksDB's memory ("Bounded memory usage" in the Kafka
 * Streams memory-management docs): one block cache shared by every store instance of the process,
 * with the memtables charged to it through one WriteBufferManager, and index and filter blocks
 * kept in that cache. Sized like the executor's store (64 MiB of blocks and 64 MiB of memtables,
 * services/step-executor): without it, every store of every partition gets its own 50 MiB cache
 * and 3 x 16 MiB of memtables (12 RocksDB instances here).
 */
public final class BoundedMemoryRocksDbConfig implements RocksDBConfigSetter {
  static final long TOTAL_MIB = 128;
  static final long MEMTABLE_MIB = 64;
  private static final Cache CACHE = new LRUCache(TOTAL_MIB << 20, -1, false, 0.1);
  private static final WriteBufferManager WRITE_BUFFERS =
      new WriteBufferManager(MEMTABLE_MIB << 20, CACHE);

  @Override
  public void setConfig(String storeName, Options options, Map<String, Object> configs) {
    BlockBasedTableConfig table = (BlockBasedTableConfig) options.tableFormatConfig();
    table.setBlockCache(CACHE);
    table.setCacheIndexAndFilterBlocks(true);
    table.setCacheIndexAndFilterBlocksWithHighPriority(true);
    table.setPinTopLevelIndexAndFilter(true);
    options.setWriteBufferManager(WRITE_BUFFERS);
    options.setTableFormatConfig(table);
  }

  @Override
  public void close(String storeName, Options options) {
    // The cache and the write buffer manager are shared by every store: never closed here.
  }
}
