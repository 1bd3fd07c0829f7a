# embed.cmake: writes OUT, a C file defining NAME (the bytes of IN, NUL-ended) and NAME_len.
# Run as: cmake -DIN=widget.js -DOUT=widget_js.c -DNAME=webchat_widget_js -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN} by embed.cmake at build time: edit the source, not this file. */\n"
  "const unsigned char ${NAME}[] = {\n${bytes}0x00};\n"
  "const unsigned long ${NAME}_len = ${len};\n")
