#pragma once
// Small file and text helpers for tests that write files (checkpoints, logs, charts).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace symgrad::testing {

// A fresh, empty directory for one test's files.
inline std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("symgrad_test_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A fresh directory that is removed with everything in it when the object goes out of
// scope; `tag` names the test in the path, a counter keeps two in one process apart.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("symgrad_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path / name).string(); }
  // Paths of the files whose name contains `part` (e.g. ".tmp-": leftovers of a save).
  std::vector<std::string> files_containing(const std::string& part) const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(path))
      if (entry.path().filename().string().find(part) != std::string::npos) found.push_back(entry.path().string());
    return found;
  }

  std::filesystem::path path;
};

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every tag opened is closed in order (<a> ... </a>, or <a/>); comments and the XML
// declaration are skipped. Enough to catch a writer that forgets a closing tag.
inline bool tags_balanced(const std::string& xml) {
  std::vector<std::string> open;
  for (std::size_t at = xml.find('<'); at != std::string::npos; at = xml.find('<', at + 1)) {
    const std::size_t end = xml.find('>', at);
    if (end == std::string::npos) return false;
    const std::string tag = xml.substr(at + 1, end - at - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;  // declaration, comment
    if (tag.back() == '/') continue;                                // self-closing
    const bool closing = tag[0] == '/';
    const std::size_t name_start = closing ? 1 : 0;
    const std::string name = tag.substr(name_start, tag.find_first_of(" \t\n", name_start) - name_start);
    if (closing) {
      if (open.empty() || open.back() != name) return false;
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  return open.empty();
}

// The d attribute of each <path> element.
inline std::vector<std::string> path_data(const std::string& svg) {
  std::vector<std::string> out;
  for (std::size_t at = svg.find("<path"); at != std::string::npos; at = svg.find("<path", at + 1)) {
    const std::size_t end = svg.find('>', at);
    const std::size_t d = svg.find(" d=\"", at);
    if (d == std::string::npos || d > end) continue;
    const std::size_t value = d + 4;
    out.push_back(svg.substr(value, svg.find('"', value) - value));
  }
  return out;
}

// The y coordinates of the "M x,y" and "L x,y" commands of a path's d attribute.
inline std::vector<double> path_y_values(const std::string& d) {
  std::vector<double> ys;
  for (std::size_t at = d.find_first_of("ML"); at != std::string::npos; at = d.find_first_of("ML", at + 1)) {
    const std::size_t comma = d.find(',', at);
    if (comma != std::string::npos) ys.push_back(std::stod(d.substr(comma + 1)));
  }
  return ys;
}

}  // namespace symgrad::testing
